import { readdir, stat, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateServerKeySet } from '../protocol/keys.js';
import { DcxError } from './errors.js';
import { defaultHomeDir, DcxHome, IDENTITY_FILE } from './home.js';
import { removeTempDirs, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('DcxHome', () => {
  test('DCX_HOME wins; otherwise ~/.config/dcx', () => {
    expect(defaultHomeDir({ DCX_HOME: '/some/where' })).toBe('/some/where');
    expect(defaultHomeDir({})).toMatch(/[/\\]\.config[/\\]dcx$/);
  });

  test('the identity is made on first use, 0600 in a 0700 directory, and reused', async () => {
    const home = new DcxHome(join(await tempDir(), 'nested', 'dcx'));
    const first = await home.identity();
    expect(first.publicKey).toHaveLength(32);
    expect(first.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(await mode(home.dir)).toBe(0o700);
    expect(await mode(home.identityPath)).toBe(0o600);
    const again = await new DcxHome(home.dir).identity();
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(again.publicKey.equals(first.publicKey)).toBe(true);
  });

  test('first uses at once end with one identity, and none of them reads a file being written', async () => {
    for (let round = 0; round < 100; round++) {
      const dir = join(await tempDir(), 'dcx');
      const identities = await Promise.all(Array.from({ length: 8 }, () => new DcxHome(dir).identity()));
      expect(new Set(identities.map((i) => i.fingerprint)).size).toBe(1);
      expect((await readdir(dir)).sort()).toEqual([IDENTITY_FILE]); // no temp file left behind
      expect(await mode(join(dir, IDENTITY_FILE))).toBe(0o600);
    }
  });

  test('a broken identity file is an error, never silently replaced', async () => {
    const home = new DcxHome(await tempDir());
    await writeFile(home.identityPath, 'garbage');
    await expect(home.identity()).rejects.toThrow(DcxError);
    expect(await readFile(home.identityPath, 'utf8')).toBe('garbage');
  });

  test('receipts are kept as receipts/<deliveryId>.receipt (0600)', async () => {
    const home = new DcxHome(await tempDir());
    const id = '00112233-4455-6677-8899-aabbccddeeff';
    const path = await home.saveReceipt(id, Buffer.from('signed'));
    expect(path).toBe(join(home.dir, 'receipts', `${id}.receipt`));
    expect(await readFile(path, 'utf8')).toBe('signed');
    expect(await mode(path)).toBe(0o600);
    expect(() => home.receiptPath('../../x')).toThrow(DcxError);
  });
});

describe('PinStore', () => {
  test('pins by origin, finds by signing key, replaces on re-pin, keeps the file 0600', async () => {
    const home = new DcxHome(await tempDir());
    const pins = home.pins();
    expect(await pins.list()).toEqual([]);
    const a = generateServerKeySet();
    const b = generateServerKeySet();
    const entry = (keys: typeof a) => ({
      origin: 'HTTP://Example.org:80/some/path',
      url: 'http://example.org',
      signKey: keys.signPublicKey.toString('base64url'),
      sealKey: keys.sealPublicKey.toString('base64url'),
      keyId: keys.keyId,
      fingerprint: 'f'.repeat(64),
      confirmHost: 'example.org',
      confirmPort: 7070,
    });
    expect(await pins.pin(entry(a))).toBeNull();
    expect(await mode(home.serversPath)).toBe(0o600);
    expect((await pins.findByKey(a.signPublicKey))?.origin).toBe('http://example.org');
    expect(await pins.findByOrigin('http://example.org/x')).not.toBeNull();
    expect(await pins.findByKey(b.signPublicKey)).toBeNull();

    const replaced = await pins.pin(entry(b));
    expect(replaced?.signKey).toBe(a.signPublicKey.toString('base64url'));
    expect(await pins.findByKey(a.signPublicKey)).toBeNull();
    expect(await pins.findByKey(b.signPublicKey)).not.toBeNull();
    expect(await new DcxHome(home.dir).pins().list()).toHaveLength(1);
  });

  test('a corrupt servers.json is reported, not treated as empty', async () => {
    const home = new DcxHome(await tempDir());
    await writeFile(home.serversPath, '{not json');
    await expect(home.pins().list()).rejects.toThrow(/servers file/);
  });
});
