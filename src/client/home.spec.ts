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

describe('EnrolmentStore', () => {
  const enrolment = (origin: string, name: string) => ({
    origin,
    recipientId: '5d0e7a42-1c3b-4f6e-9a8d-2b7c4e1f0a93',
    name,
    fingerprint: 'a'.repeat(64),
    enrolledAt: '2026-12-02T17:00:00.000Z',
  });

  test('records by origin (normalised), replaces a re-enrolment, keeps the file 0600 with no temp file left', async () => {
    const home = new DcxHome(join(await tempDir(), 'nested'));
    const store = home.enrolments();
    expect(await store.list()).toEqual([]);
    expect(await store.findByOrigin('http://example.org')).toBeNull();
    await store.record(enrolment('HTTP://Example.org:80/ignored', 'Ada'));
    await store.record(enrolment('https://other.example', 'Ada at other'));
    expect(await mode(home.enrolmentsPath)).toBe(0o600);
    expect((await store.findByOrigin('http://example.org/x'))?.name).toBe('Ada');
    await store.record(enrolment('http://example.org', 'Ada Lovelace'));
    expect((await store.list()).map((e) => [e.origin, e.name])).toEqual([
      ['https://other.example', 'Ada at other'],
      ['http://example.org', 'Ada Lovelace'],
    ]);
    expect(await new DcxHome(home.dir).enrolments().findByOrigin('not a url')).toBeNull();
    expect((await readdir(home.dir)).sort()).toEqual(['enrolments.json']);
  });

  test('a broken enrolments file is an error naming it, never silently replaced', async () => {
    const home = new DcxHome(await tempDir());
    await writeFile(home.enrolmentsPath, '{"version":2}');
    await expect(home.enrolments().list()).rejects.toThrow(`the enrolments file ${home.enrolmentsPath} is unusable`);
    await expect(home.enrolments().record(enrolment('http://example.org', 'x'))).rejects.toThrow(DcxError);
    expect(await readFile(home.enrolmentsPath, 'utf8')).toBe('{"version":2}');
  });
});
