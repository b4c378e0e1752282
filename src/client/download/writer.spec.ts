import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { PLUGIN_ENTRY_NAME } from '../../protocol/constants.js';
import { DownloadWriter } from './writer.js';
import { BundleSource, readRange } from './bundle-source.js';
import { DownloadState, downloadKey, PendingDownload } from './state.js';
import { makeServerZip, makeZip } from '../testing/bundles.js';
import { removeTempDirs, sha256, tempDir } from '../testing/temp-dirs.js';
import { Readable } from 'node:stream';

afterAll(removeTempDirs);

const plugin = randomBytes(700);
const content = Buffer.concat([randomBytes(300_000), Buffer.from('PK\x03\x04PK\x01\x02'), randomBytes(200_000)]);
const zip = makeServerZip([
  { name: PLUGIN_ENTRY_NAME, data: plugin },
  { name: 'movie.mp4', data: content },
]);
const contentStart = zip.indexOf(content.subarray(0, 64));
const url = 'http://dcx.test/api/contents/c1/bundle';

function stateFor(bytes: Buffer): DownloadState {
  return { url, deliveryUrl: 'http://dcx.test/api/deliveries/d1/bundle', etag: '"d1"', total: bytes.length, deliveryId: 'd1' };
}

async function pendingIn(): Promise<{ dir: string; pending: PendingDownload }> {
  const dir = await tempDir('dcx-download-');
  return { dir, pending: new PendingDownload(dir, url) };
}

/** Writes `bytes` in chunks of the given sizes (the last one repeated). */
async function feed(writer: DownloadWriter, bytes: Buffer, sizes = [65_536]): Promise<void> {
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = sizes[Math.min(i, sizes.length - 1)];
    await writer.write(bytes.subarray(at, at + n));
    at += n;
  }
}

async function wholeOf(source: BundleSource): Promise<Buffer> {
  return readRange(source, 0, await source.size());
}

/** A download cut after `cut` bytes (state saved as `dcx fetch` saves it), then its saved state as read back. */
async function cutDownload(pending: PendingDownload, bytes: Buffer, cut: number, sizes?: number[]): Promise<DownloadState> {
  const writer = await DownloadWriter.start(pending, stateFor(bytes));
  await feed(writer, bytes.subarray(0, cut), sizes);
  await writer.close();
  return (await pending.load())!;
}

describe('DownloadWriter', () => {
  test('a server bundle: the content is written once, to a file of its own, and hashed; the pieces read back as the bundle', async () => {
    const { dir, pending } = await pendingIn();
    const writer = await DownloadWriter.start(pending, stateFor(zip));
    await feed(writer, zip, [7, 30, 1000, 65_536, 3, 1 << 20]);
    await writer.close();
    expect(writer.offset).toBe(zip.length);

    const key = downloadKey(url);
    expect((await readdir(dir)).sort()).toEqual([`${key}.0.data`, `${key}.json`, `${key}.part`]);
    expect((await readFile(pending.dataPath(0))).equals(content)).toBe(true);
    expect(
      (await readFile(pending.partPath)).equals(
        Buffer.concat([zip.subarray(0, contentStart), zip.subarray(contentStart + content.length)]),
      ),
    ).toBe(true);
    expect((await stat(pending.partPath)).mode & 0o777).toBe(0o600);
    expect((JSON.parse(await readFile(pending.statePath, 'utf8')) as { entries: unknown }).entries).toEqual([
      { offset: contentStart, size: content.length },
    ]);

    const source = writer.source();
    expect((await wholeOf(source)).equals(zip)).toBe(true);
    expect((await readRange(source, contentStart - 10, 20)).equals(zip.subarray(contentStart - 10, contentStart + 10))).toBe(true);
    expect(source.kept).toEqual([
      {
        name: 'movie.mp4',
        headerOffset: contentStart - 30 - 'movie.mp4'.length,
        dataOffset: contentStart,
        size: content.length,
        crc32: expect.any(Number) as number,
        path: pending.dataPath(0),
        sha256: sha256(content),
      },
    ]);
  });

  test('a bundle laid out otherwise (data descriptors) is kept whole in the partial bundle', async () => {
    const archiverZip = await makeZip([
      { name: PLUGIN_ENTRY_NAME, data: plugin },
      { name: 'movie.mp4', data: Readable.from([content]) },
    ]);
    const { dir, pending } = await pendingIn();
    const writer = await DownloadWriter.start(pending, null);
    await feed(writer, archiverZip);
    await writer.close();
    expect(await readdir(dir)).toEqual([`${downloadKey(url)}.part`]);
    expect((await readFile(pending.partPath)).equals(archiverZip)).toBe(true);
    expect(writer.source().kept).toEqual([]);
    expect((await wholeOf(writer.source())).equals(archiverZip)).toBe(true);
  });

  const cuts = [
    1,
    4,
    29,
    30,
    31,
    30 + PLUGIN_ENTRY_NAME.length + 100,
    contentStart - 30,
    contentStart - 1,
    contentStart,
    contentStart + 1,
    contentStart + 250_000,
    contentStart + content.length - 1,
    contentStart + content.length,
    contentStart + content.length + 3,
    zip.length - 1,
    zip.length,
  ];
  test.each(cuts)('cut after %i bytes: read back, it carries on to the same bundle and the same SHA-256', async (cut) => {
    const { pending } = await pendingIn();
    const saved = await cutDownload(pending, zip, cut, [cut % 9_973 || 1, 65_536]);
    const resumed = await DownloadWriter.resume(pending, saved);
    if ('reason' in resumed) throw new Error(resumed.reason);
    expect(resumed.offset).toBe(cut);
    await feed(resumed, zip.subarray(cut), [12_345]);
    await resumed.close();
    const source = resumed.source();
    expect((await wholeOf(source)).equals(zip)).toBe(true);
    expect(source.kept.map((k) => [k.dataOffset, k.size, k.sha256])).toEqual([[contentStart, content.length, sha256(content)]]);
    expect((await readFile(pending.dataPath(0))).equals(content)).toBe(true);
  });

  test('several content entries: each kept in its own file, resumed in the second', async () => {
    const second = randomBytes(70_000);
    const two = makeServerZip([
      { name: PLUGIN_ENTRY_NAME, data: plugin },
      { name: 'a.bin', data: content },
      { name: 'empty.txt', data: Buffer.alloc(0) },
      { name: 'b.bin', data: second },
    ]);
    const { pending } = await pendingIn();
    const cut = two.indexOf(second.subarray(0, 64)) + 1000;
    const saved = await cutDownload(pending, two, cut);
    expect(saved.entries!.map((e) => e.size)).toEqual([content.length, 0, second.length]);
    const resumed = await DownloadWriter.resume(pending, saved);
    if ('reason' in resumed) throw new Error(resumed.reason);
    await feed(resumed, two.subarray(cut));
    await resumed.close();
    const source = resumed.source();
    expect((await wholeOf(source)).equals(two)).toBe(true);
    expect(source.kept.map((k) => [k.name, k.sha256])).toEqual([
      ['a.bin', sha256(content)],
      ['empty.txt', sha256(Buffer.alloc(0))],
      ['b.bin', sha256(second)],
    ]);
    expect((await readFile(pending.dataPath(2))).equals(second)).toBe(true);
  });

  test('files that do not fit the saved state are not resumed', async () => {
    const { pending } = await pendingIn();
    const saved = await cutDownload(pending, zip, contentStart + 1000);

    await truncate(pending.partPath, contentStart - 100);
    expect(await DownloadWriter.resume(pending, saved)).toEqual({ reason: 'the partial download does not match its saved state' });

    const other = await pendingIn();
    const moved = await cutDownload(other.pending, zip, contentStart + 1000);
    expect(await DownloadWriter.resume(other.pending, { ...moved, entries: [{ offset: contentStart + 1, size: content.length }] })).toEqual(
      { reason: 'the partial download does not match its saved state' },
    );
    expect(await DownloadWriter.resume(other.pending, { ...moved, entries: [{ offset: contentStart, size: 10 }] })).toEqual({
      reason: 'the partial download does not match its saved state',
    });
    expect(await DownloadWriter.resume(other.pending, { ...moved, total: contentStart })).toEqual({
      reason: `the partial download has ${contentStart + 1000} bytes, more than the bundle's ${contentStart}`,
    });
    // A state that lists no kept entry: the data file is not the download's; it carries on after the header.
    const unlisted = await DownloadWriter.resume(other.pending, { ...moved, entries: [] });
    expect('reason' in unlisted ? unlisted.reason : unlisted.offset).toBe(contentStart);
  });

  test('a state saved by a client that kept whole bundles resumes whole', async () => {
    const { dir, pending } = await pendingIn();
    const cut = contentStart + 5000;
    await writeFile(pending.partPath, zip.subarray(0, cut));
    const resumed = await DownloadWriter.resume(pending, stateFor(zip));
    if ('reason' in resumed) throw new Error(resumed.reason);
    expect(resumed.offset).toBe(cut);
    await feed(resumed, zip.subarray(cut));
    await resumed.close();
    expect((await readFile(pending.partPath)).equals(zip)).toBe(true);
    expect(resumed.source().kept).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.endsWith('.data'))).toEqual([]);
  });

  test('an entry whose header was written but not yet in the saved state is taken up again', async () => {
    const { pending } = await pendingIn();
    await writeFile(pending.partPath, zip.subarray(0, contentStart));
    await pending.save({ ...stateFor(zip), entries: [] });
    const resumed = await DownloadWriter.resume(pending, (await pending.load())!);
    if ('reason' in resumed) throw new Error(resumed.reason);
    expect((await pending.load())!.entries).toEqual([{ offset: contentStart, size: content.length }]);
    await feed(resumed, zip.subarray(contentStart));
    await resumed.close();
    expect(resumed.source().kept.map((k) => k.sha256)).toEqual([sha256(content)]);
  });

  test('discard removes the partial bundle, the kept entries and the state', async () => {
    const { dir, pending } = await pendingIn();
    await cutDownload(pending, zip, contentStart + 10);
    expect((await readdir(dir)).length).toBe(3);
    await pending.discard();
    expect(await readdir(dir)).toEqual([]);
  });
});
