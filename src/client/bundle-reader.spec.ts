import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_PLUGIN_DATA_SIZE, PLUGIN_ENTRY_NAME } from '../protocol/constants.js';
import { generateServerKeySet } from '../protocol/keys.js';
import { openPluginData } from '../protocol/plugin-data.js';
import { DownloadWriter } from './download/writer.js';
import { Bundle, findSavedCopy } from './bundle-reader.js';
import { BundleSource } from './download/bundle-source.js';
import { PendingDownload } from './download/state.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { makeBundle, makeZip, patchEntryName } from './testing/bundles.js';
import { removeTempDirs, sha256, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

async function exitCodeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DcxError) return error.exitCode;
    throw error;
  }
  throw new Error('expected a DcxError');
}

async function writeTemp(bytes: Buffer, name = 'b.dcx'): Promise<{ dir: string; path: string }> {
  const dir = await tempDir();
  const path = join(dir, name);
  await writeFile(path, bytes);
  return { dir, path };
}

const keys = generateServerKeySet();

describe('Bundle', () => {
  test('reads a server-shaped bundle: plug-in data first, a 2 MiB stored entry with a data descriptor intact', async () => {
    // Bytes that contain the data-descriptor signature, which the streaming parser mistakes for an end.
    const content = Buffer.concat([randomBytes(1024 * 1024), Buffer.from('PK\x07\x08'), randomBytes(1024 * 1024)]);
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'big.bin', bytes: content }] });
    const { dir, path } = await writeTemp(zip);
    const bundle = await Bundle.open(path);
    expect(openPluginData(bundle.pluginRecord, {}).data.deliveryId).toBe(data.deliveryId);
    const [part] = bundle.match(data.files);
    const out = join(dir, 'out');
    let progressed = 0;
    const saved = await bundle.extract(part, out, (n) => (progressed += n));
    expect(saved).toEqual({ path: join(out, 'big.bin'), size: content.length, sha256: sha256(content) });
    expect(progressed).toBe(content.length);
    expect((await readFile(saved.path)).equals(content)).toBe(true);
    expect(await readdir(out)).toEqual(['big.bin']);

    // Extracting again finds the same file saved (same name, size, SHA-256): reused, nothing written.
    const second = await bundle.extract(part, out);
    expect(second).toEqual({ path: join(out, 'big.bin'), size: content.length, sha256: sha256(content), alreadySaved: true });
    expect(await readdir(out)).toEqual(['big.bin']);
  });

  test('a different file of that name is never replaced nor reused: the content gets the next free name', async () => {
    const content = randomBytes(5000);
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'report.pdf', bytes: content }] });
    const { dir, path } = await writeTemp(zip);
    const out = join(dir, 'out');
    await mkdir(out);
    // Same size, other bytes; and a smaller file: neither is the content.
    await writeFile(join(out, 'report.pdf'), randomBytes(5000));
    await writeFile(join(out, 'report (1).pdf'), 'short');
    const bundle = await Bundle.open(path);
    const [part] = bundle.match(data.files);
    const saved = await bundle.extract(part, out);
    expect(saved).toEqual({ path: join(out, 'report (2).pdf'), size: content.length, sha256: sha256(content) });

    // Saved once as `report (2).pdf`: a re-run finds it there, behind the two other files.
    expect(await bundle.extract(part, out)).toMatchObject({ path: join(out, 'report (2).pdf'), alreadySaved: true });
    expect((await readdir(out)).sort()).toEqual(['report (1).pdf', 'report (2).pdf', 'report.pdf']);
  });

  test('a symbolic link or a directory of that name is not taken for the saved file', async () => {
    const content = randomBytes(3000);
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'a.bin', bytes: content }] });
    const { dir, path } = await writeTemp(zip);
    const out = join(dir, 'out');
    await mkdir(join(out, 'a.bin'), { recursive: true });
    await writeFile(join(dir, 'elsewhere.bin'), content);
    await symlink(join(dir, 'elsewhere.bin'), join(out, 'a (1).bin'));
    const bundle = await Bundle.open(path);
    const saved = await bundle.extract(bundle.match(data.files)[0], out);
    expect(saved).toEqual({ path: join(out, 'a (2).bin'), size: content.length, sha256: sha256(content) });
  });

  test('findSavedCopy: stops at the first free name; hashes only files of the right size', async () => {
    const dir = await tempDir();
    const bytes = randomBytes(100);
    await writeFile(join(dir, 'x.txt'), randomBytes(100));
    await writeFile(join(dir, 'x (2).txt'), bytes); // after the free `x (1).txt`: not where a save would have gone
    expect(await findSavedCopy(dir, 'x.txt', 100, sha256(bytes))).toBeNull();
    await writeFile(join(dir, 'x (1).txt'), bytes);
    expect(await findSavedCopy(dir, 'x.txt', 100, sha256(bytes))).toBe(join(dir, 'x (1).txt'));
    expect(await findSavedCopy(dir, 'x.txt', 101, sha256(bytes))).toBeNull();
  });

  test('refuses a ZIP whose entry names try ../ before writing anything', async () => {
    const base = await tempDir();
    const { zip } = await makeBundle({
      keys,
      confirmPort: 1,
      files: [{ name: 'ok.txt', bytes: Buffer.from('ok') }],
      entries: [
        { name: 'PLACEHOLDER_escaped.txt', data: Buffer.from('escaped') },
        { name: 'ok.txt', data: Buffer.from('ok') },
      ],
    });
    const path = join(base, 'trick.dcx');
    await writeFile(path, patchEntryName(zip, 'PLACEHOLDER_escaped.txt', '../../../../escaped.txt'));
    const error = await Bundle.open(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DcxError);
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    expect((error as DcxError).message).toMatch(/"\.\.\/\.\.\/\.\.\/\.\.\/escaped\.txt" is not a plain file name/);
    expect(await readdir(base)).toEqual(['trick.dcx']);
  });

  test.each(['/etc/passwd', 'sub/dir.txt', 'win\\dows.txt', 'dir/', 'C:\\x.txt', '..', 'nul\u0000.txt'])(
    'refuses entry name %j',
    async (name) => {
      const placeholder = 'Q'.repeat(Buffer.byteLength(name));
      const zip = patchEntryName(
        await makeZip([
          { name: PLUGIN_ENTRY_NAME, data: Buffer.alloc(300, 1) },
          { name: placeholder, data: Buffer.from('x') },
        ]),
        placeholder,
        name,
      );
      expect(await exitCodeOf(Bundle.open((await writeTemp(zip)).path))).toBe(ExitCode.UnusableBundle);
    },
  );

  test('refuses a ZIP without plug-in data first', async () => {
    const later = await makeZip([
      { name: 'movie.mp4', data: Buffer.from('content') },
      { name: PLUGIN_ENTRY_NAME, data: randomBytes(300) },
    ]);
    const error = await Bundle.open((await writeTemp(later)).path).catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    expect((error as DcxError).message).toMatch(/first entry is not the plug-in data/);

    const none = await makeZip([{ name: 'movie.mp4', data: Buffer.from('content') }]);
    expect(await exitCodeOf(Bundle.open((await writeTemp(none)).path))).toBe(ExitCode.UnusableBundle);
  });

  test('refuses oversized plug-in data before reading it', async () => {
    const zip = await makeZip([{ name: PLUGIN_ENTRY_NAME, data: Buffer.alloc(MAX_PLUGIN_DATA_SIZE + 1) }]);
    const error = await Bundle.open((await writeTemp(zip)).path).catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    expect((error as DcxError).message).toMatch(/larger than 65536/);
  });

  test('refuses duplicate entries, a file that is not a ZIP, and an empty file', async () => {
    const dup = await makeZip([
      { name: PLUGIN_ENTRY_NAME, data: randomBytes(300) },
      { name: 'a.txt', data: Buffer.from('1') },
      { name: 'a.txt', data: Buffer.from('2') },
    ]);
    expect(await exitCodeOf(Bundle.open((await writeTemp(dup)).path))).toBe(ExitCode.UnusableBundle);
    expect(await exitCodeOf(Bundle.open((await writeTemp(Buffer.from('<html>not a zip</html>'))).path))).toBe(ExitCode.UnusableBundle);
    expect(await exitCodeOf(Bundle.open((await writeTemp(Buffer.alloc(0))).path))).toBe(ExitCode.UnusableBundle);
    expect(await exitCodeOf(Bundle.open('/nonexistent/x.dcx'))).toBe(ExitCode.Usage);
  });

  test('an HTML page is named as one (a saved portal page); other bytes are "not a readable ZIP"', async () => {
    const message = async (bytes: Buffer) => {
      const { path } = await writeTemp(bytes);
      return Bundle.open(path).then(
        () => 'opened',
        (error: Error) => error.message,
      );
    };
    for (const page of ['<!DOCTYPE html><html><body>Download</body></html>', '\ufeff\n  <html lang="en">', '<!-- portal -->\n<html>']) {
      expect(await message(Buffer.from(page))).toMatch(/is a web page \(HTML\), not a DCX bundle/);
    }
    expect(await message(Buffer.from('%PDF-1.7 not a bundle'))).toMatch(/is not a DCX bundle: not a readable ZIP file/);
  });

  test('entries must match the plug-in data file list exactly', async () => {
    const files = [{ name: 'a.txt', bytes: Buffer.from('a') }];
    const extra = await makeBundle({
      keys,
      confirmPort: 1,
      files,
      entries: [
        { name: 'a.txt', data: Buffer.from('a') },
        { name: 'b.txt', data: Buffer.from('b') },
      ],
    });
    const bundle = await Bundle.open((await writeTemp(extra.zip)).path);
    expect(() => bundle.match(extra.data.files)).toThrow(/does not list/);
    const missing = await makeBundle({ keys, confirmPort: 1, files, entries: [] });
    const bare = await Bundle.open((await writeTemp(missing.zip)).path);
    expect(() => bare.match(missing.data.files)).toThrow(/missing "a.txt"/);
  });

  test('a digest mismatch leaves nothing in DIR', async () => {
    const genuine = Buffer.from('the real content');
    const forged = Buffer.from('the fake content');
    const { zip, data } = await makeBundle({
      keys,
      confirmPort: 1,
      files: [{ name: 'a.txt', bytes: genuine }],
      entries: [{ name: 'a.txt', data: Readable.from([forged]) }],
    });
    const { dir, path } = await writeTemp(zip);
    const bundle = await Bundle.open(path);
    const out = join(dir, 'out');
    const error = await bundle.extract(bundle.match(data.files)[0], out).catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.DigestMismatch);
    expect(await readdir(out)).toEqual([]);
  });

  test('more bytes than the plug-in data says is a digest mismatch, caught while streaming', async () => {
    const { zip, data } = await makeBundle({
      keys,
      confirmPort: 1,
      files: [{ name: 'a.txt', bytes: Buffer.from('short') }],
      entries: [{ name: 'a.txt', data: randomBytes(100_000) }],
    });
    const { dir, path } = await writeTemp(zip);
    const bundle = await Bundle.open(path);
    const out = join(dir, 'out');
    expect(await exitCodeOf(bundle.extract(bundle.match(data.files)[0], out))).toBe(ExitCode.DigestMismatch);
    expect(await readdir(out)).toEqual([]);
  });

  test('the saved name is sanitised', async () => {
    const bytes = Buffer.from('x');
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'CON', bytes }] });
    const { dir, path } = await writeTemp(zip);
    const bundle = await Bundle.open(path);
    const saved = await bundle.extract(bundle.match(data.files)[0], join(dir, 'out'));
    expect(saved.path).toBe(join(dir, 'out', '_CON'));
  });
});

/** `zip` as `dcx fetch` keeps a download: written through DownloadWriter into a downloads directory. */
async function downloaded(zip: Buffer): Promise<{ source: BundleSource; downloads: string }> {
  const downloads = await tempDir('dcx-downloads-');
  const writer = await DownloadWriter.start(new PendingDownload(downloads, 'http://dcx.test/bundle'), null);
  for (let at = 0; at < zip.length; at += 100_000) await writer.write(zip.subarray(at, at + 100_000));
  await writer.close();
  return { source: writer.source(), downloads };
}

const CENTRAL_HEADER = Buffer.from('PK\x01\x02', 'latin1');

/** The central directory header of the last entry (the content): its offset in `zip`. */
const lastCentralHeader = (zip: Buffer) => zip.lastIndexOf(CENTRAL_HEADER);

describe('Bundle of a download whose content was kept apart', () => {
  const content = Buffer.concat([randomBytes(400_000), Buffer.from('PK\x01\x02'), randomBytes(100_000)]);

  test('the kept file is checked and linked into DIR, not copied; a second save copies (no shared inode)', async () => {
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'big.bin', bytes: content }], shape: 'server' });
    const { source } = await downloaded(zip);
    expect(source.kept).toHaveLength(1);
    const bundle = await Bundle.open(source, 'the bundle from here');
    expect(openPluginData(bundle.pluginRecord, {}).data.deliveryId).toBe(data.deliveryId);
    const out = join(await tempDir(), 'out');
    let progressed = 0;
    const saved = await bundle.extract(bundle.match(data.files)[0], out, (n) => (progressed += n));
    expect(saved).toEqual({ path: join(out, 'big.bin'), size: content.length, sha256: sha256(content) });
    expect(progressed).toBe(content.length);
    expect((await stat(saved.path)).ino).toBe((await stat(source.kept[0].path)).ino);
    expect((await readFile(saved.path)).equals(content)).toBe(true);

    // The same content saved again is recognised (re-delivery); another file in its place gets a copy
    // under the next name, which must not share the kept file's inode.
    expect(await bundle.extract(bundle.match(data.files)[0], out)).toMatchObject({ path: join(out, 'big.bin'), alreadySaved: true });
    await rm(saved.path);
    await writeFile(saved.path, 'another file');
    const other = join(out, 'big (1).bin');
    await link(source.kept[0].path, join(out, 'hard link'));
    const second = await bundle.extract(bundle.match(data.files)[0], out);
    expect(second.path).toBe(other);
    expect(second.alreadySaved).toBeUndefined();
    expect((await stat(second.path)).ino).not.toBe((await stat(source.kept[0].path)).ino);
    expect((await readFile(second.path)).equals(content)).toBe(true);
  });

  test('DIR on another file system: copied through a temp file there, then renamed', async () => {
    const shm = await mkdtemp('/dev/shm/dcx-out-').catch(() => null);
    if (!shm) return;
    try {
      const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'big.bin', bytes: content }], shape: 'server' });
      const { source, downloads } = await downloaded(zip);
      if ((await stat(shm)).dev === (await stat(downloads)).dev) return; // not another file system here
      const bundle = await Bundle.open(source);
      const saved = await bundle.extract(bundle.match(data.files)[0], shm);
      expect(saved.path).toBe(join(shm, 'big.bin'));
      expect((await readFile(saved.path)).equals(content)).toBe(true);
      expect(await readdir(shm)).toEqual(['big.bin']);
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  test('a kept file whose digest differs from the plug-in data: exit 4, nothing in DIR', async () => {
    const forged = Buffer.from(content);
    forged[1234] ^= 1;
    const { zip, data } = await makeBundle({
      keys,
      confirmPort: 1,
      files: [{ name: 'big.bin', bytes: content }],
      entries: [{ name: 'big.bin', data: forged }],
      shape: 'server',
    });
    const { source } = await downloaded(zip);
    const bundle = await Bundle.open(source);
    const out = join(await tempDir(), 'out');
    const error = await bundle.extract(bundle.match(data.files)[0], out).catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.DigestMismatch);
    expect((error as DcxError).message).toMatch(
      /"big\.bin" is not what the server sent \(SHA-256 [0-9a-f]{64} differs from the plug-in data's/,
    );
    expect(await readdir(out)).toEqual([]);
  });

  test.each([
    ['its CRC-32', 16],
    ['its size', 20],
  ])('a central directory that differs from the streamed local header (%s) is unusable (exit 3)', async (_what, field) => {
    const { zip } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'big.bin', bytes: content }], shape: 'server' });
    const tampered = Buffer.from(zip);
    tampered.writeUInt32LE((tampered.readUInt32LE(lastCentralHeader(zip) + field) ^ 1) >>> 0, lastCentralHeader(zip) + field);
    const error = await Bundle.open((await downloaded(tampered)).source, 'the bundle').catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    expect((error as DcxError).message).toBe(
      'the bundle is damaged: its central directory does not describe "big.bin" as its local header does',
    );
  });

  test('a streamed entry the central directory does not list is unusable (exit 3)', async () => {
    const { zip } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'big.bin', bytes: content }], shape: 'server' });
    const tampered = Buffer.from(zip);
    // The central directory points its content entry at the plug-in data's local header.
    tampered.writeUInt32LE(0, lastCentralHeader(zip) + 42);
    const error = await Bundle.open((await downloaded(tampered)).source, 'the bundle').catch((e: unknown) => e);
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
  });

  test('entry names with path tricks are refused as before', async () => {
    const { zip } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'QQQQQQQQQQQQ', bytes: content }], shape: 'server' });
    const error = await Bundle.open((await downloaded(patchEntryName(zip, 'QQQQQQQQQQQQ', '../../x.txt!'))).source, 'the bundle').catch(
      (e: unknown) => e,
    );
    expect((error as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    expect((error as DcxError).message).toMatch(/entry name "\.\.\/\.\.\/x\.txt!" is not a plain file name/);
  });
});
