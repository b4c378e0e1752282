import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_PLUGIN_DATA_SIZE, PLUGIN_ENTRY_NAME } from '../protocol/constants.js';
import { generateServerKeySet } from '../protocol/keys.js';
import { openPluginData } from '../protocol/plugin-data.js';
import { Bundle } from './bundle-reader.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { makeBundle, makeZip, patchEntryName, removeTempDirs, sha256, tempDir } from './spec-support.js';

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

    // Extracting again never overwrites.
    const second = await bundle.extract(part, out);
    expect(second.path).toBe(join(out, 'big (1).bin'));
    expect((await readdir(out)).sort()).toEqual(['big (1).bin', 'big.bin']);
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

  test.each(['/etc/passwd', 'sub/dir.txt', 'win\\dows.txt', 'dir/', 'C:\\x.txt', '..', 'nul\u0000.txt'])('refuses entry name %j', async (name) => {
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
  });

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

  test('entries must match the plug-in data file list exactly', async () => {
    const files = [{ name: 'a.txt', bytes: Buffer.from('a') }];
    const extra = await makeBundle({ keys, confirmPort: 1, files, entries: [{ name: 'a.txt', data: Buffer.from('a') }, { name: 'b.txt', data: Buffer.from('b') }] });
    const bundle = await Bundle.open((await writeTemp(extra.zip)).path);
    expect(() => bundle.match(extra.data.files)).toThrow(/does not list/);
    const missing = await makeBundle({ keys, confirmPort: 1, files, entries: [] });
    const bare = await Bundle.open((await writeTemp(missing.zip)).path);
    expect(() => bare.match(missing.data.files)).toThrow(/missing "a.txt"/);
  });

  test('a digest mismatch leaves nothing in DIR', async () => {
    const genuine = Buffer.from('the real content');
    const forged = Buffer.from('the fake content');
    const { zip, data } = await makeBundle({ keys, confirmPort: 1, files: [{ name: 'a.txt', bytes: genuine }], entries: [{ name: 'a.txt', data: Readable.from([forged]) }] });
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
