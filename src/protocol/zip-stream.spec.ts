import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { ZipArchive } from 'archiver';
import { bufferEntry, layoutZip } from './zip-layout.js';
import { renderLayout } from './testing/zip-bytes.js';
import { StreamedEntry, ZipStreamPiece, ZipStreamSplitter } from './zip-stream.js';

const DATE = new Date(Date.UTC(2026, 10, 22, 13, 45, 30));
const afterFirst = (entry: StreamedEntry) => entry.index > 0;

interface Split {
  /** Every byte, meta and data, in the order the pieces came: must be the archive again. */
  all: Buffer;
  meta: Buffer;
  entries: StreamedEntry[];
  /** Data per split entry index. */
  data: Map<number, Buffer>;
  ended: boolean;
  offset: number;
}

/** Feeds `chunks` to a splitter and gathers what it cut; checks the pieces' order as it goes. */
function split(chunks: Buffer[], policy = afterFirst): Split {
  const splitter = new ZipStreamSplitter(policy);
  const all: Buffer[] = [];
  const meta: Buffer[] = [];
  const entries: StreamedEntry[] = [];
  const data = new Map<number, Buffer[]>();
  let current: StreamedEntry | null = null;
  for (const chunk of chunks) {
    const pieces: ZipStreamPiece[] = splitter.write(chunk);
    expect(Buffer.concat(pieces.flatMap((p) => (p.kind === 'entry' ? [] : [p.bytes]))).equals(chunk)).toBe(true);
    for (const piece of pieces) {
      if (piece.kind === 'entry') {
        entries.push(piece.entry);
        data.set(piece.entry.index, []);
        current = piece.entry;
      } else if (piece.kind === 'data') {
        expect(piece.entry).toBe(current);
        data.get(piece.entry.index)!.push(piece.bytes);
        all.push(piece.bytes);
      } else {
        meta.push(piece.bytes);
        all.push(piece.bytes);
      }
    }
  }
  return {
    all: Buffer.concat(all),
    meta: Buffer.concat(meta),
    entries,
    data: new Map([...data].map(([k, v]) => [k, Buffer.concat(v)])),
    ended: splitter.ended,
    offset: splitter.offset,
  };
}

const cut = (bytes: Buffer, ...at: number[]): Buffer[] =>
  [0, ...at, bytes.length].slice(1).map((end, i, ends) => bytes.subarray(i === 0 ? 0 : ends[i - 1], end));

describe('ZipStreamSplitter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dcx-zip-stream-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const plugin = randomBytes(517);
  const content = Buffer.concat([randomBytes(3000), Buffer.from('PK\x07\x08PK\x01\x02PK\x03\x04'), randomBytes(2000)]);
  const archive = renderLayout(
    layoutZip(
      [
        bufferEntry('dcx-plugin-data.bin', plugin),
        { name: 'clip – été.mp4', size: content.length, crc32: crc32(content), source: content },
      ],
      DATE,
    ),
  );
  const contentHeader = 30 + 19 + plugin.length;
  const contentStart = contentHeader + 30 + Buffer.byteLength('clip – été.mp4');

  test('a server bundle: the content entry is cut out, everything else is meta, in order', () => {
    const result = split([archive]);
    expect(result.all.equals(archive)).toBe(true);
    expect(result.entries).toEqual([
      {
        index: 1,
        name: 'clip – été.mp4',
        headerOffset: contentHeader,
        dataOffset: contentStart,
        method: 0,
        flags: 0x0800,
        crc32: crc32(content),
        compressedSize: content.length,
        uncompressedSize: content.length,
      },
    ]);
    expect(result.data.get(1)!.equals(content)).toBe(true);
    expect(result.meta.equals(Buffer.concat([archive.subarray(0, contentStart), archive.subarray(contentStart + content.length)]))).toBe(
      true,
    );
    // The central directory is not a local header: the entries are over.
    expect(result.ended).toBe(true);
    expect(result.offset).toBe(archive.length);
  });

  test('the same pieces whatever the chunks: split at every byte, in two and in three', () => {
    const whole = split([archive]);
    const bytewise = split([...archive].map((b) => Buffer.from([b])));
    expect(bytewise.all.equals(archive) && bytewise.meta.equals(whole.meta) && bytewise.data.get(1)!.equals(content)).toBe(true);
    expect(bytewise.entries).toEqual(whole.entries);
    for (let at = 1; at < archive.length; at++) {
      const two = split(cut(archive, at));
      if (!two.meta.equals(whole.meta) || !two.data.get(1)!.equals(content) || two.entries[0].dataOffset !== contentStart)
        throw new Error(`differs when cut at ${at}`);
    }
    for (const a of [1, 29, 30, 31, 48, 49, contentHeader - 1, contentHeader, contentHeader + 29, contentStart - 1]) {
      for (const b of [
        contentStart,
        contentStart + 1,
        contentStart + content.length - 1,
        contentStart + content.length,
        contentStart + content.length + 1,
        archive.length - 1,
      ]) {
        const three = split(cut(archive, a, b));
        expect(three.all.equals(archive) && three.meta.equals(whole.meta) && three.data.get(1)!.equals(content)).toBe(true);
      }
    }
  });

  test('an archive written by Info-ZIP: stored entries split, a deflated one stays meta and the next is still found', () => {
    const text = Buffer.from('compressible '.repeat(500));
    const video = randomBytes(40_000);
    writeFileSync(join(dir, 'notes.txt'), text);
    writeFileSync(join(dir, 'video.bin'), video);
    writeFileSync(join(dir, 'empty.bin'), Buffer.alloc(0));
    const zipPath = join(dir, 'info.zip');
    // -n .bin: .bin files stored, the rest deflated; -X: no extra fields; -D: no directory entries.
    execFileSync('zip', ['-q', '-X', '-D', '-n', '.bin', zipPath, 'notes.txt', 'video.bin', 'empty.bin'], { cwd: dir });
    const zip = readFileSync(zipPath);
    const result = split(cut(zip, 7, 1000, 20_000));
    expect(result.all.equals(zip)).toBe(true);
    expect(result.entries.map((e) => [e.index, e.name, e.method, e.compressedSize])).toEqual([
      [1, 'video.bin', 0, video.length],
      [2, 'empty.bin', 0, 0],
    ]);
    expect(result.data.get(1)!.equals(video)).toBe(true);
    expect(result.data.get(2)!.length).toBe(0);
    expect(result.ended).toBe(true);
    // With every entry a candidate, the first (deflated) one is still not split.
    expect(split([zip], () => true).entries.map((e) => e.name)).toEqual(['video.bin', 'empty.bin']);
  });

  test('an entry with a data descriptor (archiver, from a stream) ends the reading: the rest is meta', async () => {
    const archiverZip = await new Promise<Buffer>((resolve, reject) => {
      const zip = new ZipArchive({ store: true });
      const chunks: Buffer[] = [];
      zip.on('data', (chunk: Buffer) => chunks.push(chunk));
      zip.on('end', () => resolve(Buffer.concat(chunks)));
      zip.on('error', reject);
      zip.append(plugin, { name: 'dcx-plugin-data.bin', date: DATE });
      zip.append(Readable.from([content]), { name: 'movie.mp4', date: DATE });
      void zip.finalize();
    });
    expect(archiverZip.readUInt16LE(30 + 19 + plugin.length + 6) & 0x0008).toBe(0x0008);
    const result = split(cut(archiverZip, 100, 1000));
    expect(result.entries).toEqual([]);
    expect(result.meta.equals(archiverZip)).toBe(true);
    expect(result.ended).toBe(true);
  });

  test('not a ZIP: all meta; encrypted or compressed entries are never split', () => {
    const html = Buffer.from('<html>not a zip</html>');
    expect(split([html])).toMatchObject({ entries: [], ended: true });
    expect(split([html]).meta.equals(html)).toBe(true);

    const encrypted = Buffer.from(archive);
    encrypted.writeUInt16LE(0x0801, contentHeader + 6);
    expect(split([encrypted]).entries).toEqual([]);
    const deflated = Buffer.from(archive);
    deflated.writeUInt16LE(8, contentHeader + 8);
    const result = split([deflated]);
    expect(result.entries).toEqual([]);
    expect(result.meta.equals(deflated)).toBe(true);
  });

  test('ZIP64: sizes from the local extra field', () => {
    const size = 4 * 1024 ** 3 + 5;
    const big = layoutZip<null>(
      [
        { name: 'dcx-plugin-data.bin', size: plugin.length, crc32: crc32(plugin), source: null },
        { name: 'big.bin', size, crc32: 0x12345678, source: null },
      ],
      DATE,
    );
    const bytesOf = (i: number) => {
      const segment = big.segments[i];
      if (segment.kind !== 'bytes') throw new Error(`segment ${i} is not a header`);
      return segment.bytes;
    };
    const head = Buffer.concat([bytesOf(0), plugin, bytesOf(2)]);
    const splitter = new ZipStreamSplitter(afterFirst);
    const pieces = splitter.write(Buffer.concat([head, Buffer.alloc(10)]));
    const entry = pieces.find((p) => p.kind === 'entry')!;
    expect(
      entry.kind === 'entry' && [entry.entry.compressedSize, entry.entry.uncompressedSize, entry.entry.crc32, entry.entry.dataOffset],
    ).toEqual([size, size, 0x12345678, head.length]);
    expect(pieces.at(-1)).toMatchObject({ kind: 'data', bytes: Buffer.alloc(10) });
    expect(splitter.skippable).toBe(0);
  });

  test('skip passes over what need not be read: the data of an entry kept whole, everything once ended', () => {
    const splitter = new ZipStreamSplitter(() => false);
    splitter.write(archive.subarray(0, 49));
    expect(splitter.skippable).toBe(plugin.length);
    expect(() => splitter.skip(plugin.length + 1)).toThrow(RangeError);
    splitter.skip(plugin.length);
    expect(splitter.skippable).toBe(0);
    splitter.write(archive.subarray(contentHeader, contentStart));
    expect(splitter.skippable).toBe(content.length);
    splitter.skip(content.length);
    splitter.write(archive.subarray(contentStart + content.length, contentStart + content.length + 4));
    expect(splitter.ended).toBe(true);
    expect(splitter.skippable).toBe(Number.POSITIVE_INFINITY);
    splitter.skip(50);
    expect(splitter.offset).toBe(contentStart + content.length + 4 + 50);
  });
});
