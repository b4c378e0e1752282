import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprint, generateClientIdentity, generateServerKeySet, serializeServerKeySet } from '../../protocol/keys.js';
import { clientSealSecret } from '../../protocol/plugin-data.js';
import { loadAppConfig } from '../config/app-config.js';
import { SERVER_KEY_FILE_NAME, ServerKeysService } from './server-keys.service.js';

describe('ServerKeysService', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-keys-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('creates the key set at first start (dir 0700, file 0600) and loads the same one afterwards', async () => {
    const config = loadAppConfig({ DATA_DIR: dir, PUBLIC_HOST: 'dcx.example', CONFIRM_PORT: '7171' });
    const first = new ServerKeysService(config);
    await first.onModuleInit();
    const file = join(dir, 'keys', SERVER_KEY_FILE_NAME);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    const second = new ServerKeysService(config);
    await second.onModuleInit();
    expect(second.current.keyId).toBe(first.current.keyId);
    expect(second.current.signPublicKey.equals(first.current.signPublicKey)).toBe(true);
    expect(second.byKeyId(first.current.keyId)).toBe(second.current);
    expect(second.byKeyId('0000000000000000')).toBeUndefined();

    expect(second.wellKnown()).toEqual({
      serverKey: first.current.signPublicKey.toString('base64url'),
      sealKey: first.current.sealPublicKey.toString('base64url'),
      keyId: first.current.keyId,
      fingerprint: fingerprint(first.current.signPublicKey),
      confirmHost: 'dcx.example',
      confirmPort: 7171,
      url: 'http://dcx.example:8080',
    });
    expect(JSON.stringify(second.wellKnown())).not.toContain((await readFile(file, 'utf8')).match(/"d": "([^"]+)"/)![1]);
  });

  test("a client's seal secret is X25519 of that key set and client, kept per key set; a low-order key throws each time", async () => {
    const service = new ServerKeysService(loadAppConfig({ DATA_DIR: dir }));
    await service.onModuleInit();
    const alice = generateClientIdentity().publicKey;
    const bob = generateClientIdentity().publicKey;
    const mine = service.clientSealSecret(service.current, alice);
    expect(mine.equals(clientSealSecret(service.current, alice))).toBe(true);
    expect(service.clientSealSecret(service.current, alice)).toBe(mine); // the same buffer: kept, not derived again
    expect(service.clientSealSecret(service.current, bob).equals(clientSealSecret(service.current, bob))).toBe(true);
    const other = generateServerKeySet(); // say, the next key set after a rotation
    expect(service.clientSealSecret(other, alice).equals(clientSealSecret(other, alice))).toBe(true);
    const lowOrder = Buffer.alloc(32);
    for (let i = 0; i < 2; i++) expect(() => service.clientSealSecret(service.current, lowOrder)).toThrow(/low-order/);
  });

  test('SERVER_KEY_FILE is loaded as given', async () => {
    const keys = generateServerKeySet();
    const path = join(dir, 'operator-keys.json');
    await writeFile(path, serializeServerKeySet(keys), { mode: 0o600 });
    const service = new ServerKeysService(loadAppConfig({ DATA_DIR: dir, SERVER_KEY_FILE: path }));
    await service.onModuleInit();
    expect(service.current.keyId).toBe(keys.keyId);
    expect(service.keySource).toBe(path);
  });

  test('a missing or broken SERVER_KEY_FILE is a clear error', async () => {
    const missing = new ServerKeysService(loadAppConfig({ DATA_DIR: dir, SERVER_KEY_FILE: join(dir, 'nope.json') }));
    await expect(missing.onModuleInit()).rejects.toThrow(/SERVER_KEY_FILE: cannot read the server key file .*nope\.json \(ENOENT\)/);
    await writeFile(join(dir, 'bad.json'), '{"kind":"something-else"}');
    const broken = new ServerKeysService(loadAppConfig({ DATA_DIR: dir, SERVER_KEY_FILE: join(dir, 'bad.json') }));
    await expect(broken.onModuleInit()).rejects.toThrow(/SERVER_KEY_FILE: .*bad\.json is not a valid DCX server key file/);
  });
});
