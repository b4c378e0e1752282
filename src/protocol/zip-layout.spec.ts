import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import unzipper from 'unzipper';
import { bufferEntry, layoutZip, ZipEntrySpec } from './zip-layout.js';
import { renderLayout } from './testing/zip-bytes.js';

const DATE = new Date(Date.UTC(2026, 10, 22, 13, 45, 30));

function pseudoRandom(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

describe('store-only ZIP layout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dcx-zip-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // The content deliberately contains the data-descriptor signature that trips unzipper's streaming Parse.
  const content = Buffer.concat([pseudoRandom(700_000, 7), Buffer.from('PK\x07\x08'), pseudoRandom(1_400_000, 9)]);
  const plugin = pseudoRandom(517, 3);
  const entries: ZipEntrySpec<Buffer>[] = [
    bufferEntry('dcx-plugin-data.bin', plugin),
    { name: 'clip – été.mp4', size: content.length, crc32: crc32(content), source: content },
  ];
  const layout = layoutZip(entries, DATE);
  const archive = renderLayout(layout);
  const path = join(dir, 'bundle.dcx');
  writeFileSync(path, archive);

  test('size is exact and the layout is deterministic', () => {
    expect(archive.length).toBe(layout.size);
    expect(renderLayout(layoutZip(entries, DATE)).equals(archive)).toBe(true);
    // local headers (2 × 30 + names) + data + central (2 × 46 + names) + end (22)
    const names = Buffer.byteLength('dcx-plugin-data.bin') + Buffer.byteLength('clip – été.mp4');
    expect(layout.size).toBe(60 + names + plugin.length + content.length + 92 + names + 22);
  });

  test('local headers carry CRC-32 and sizes, no data descriptor', () => {
    expect(archive.readUInt32LE(0)).toBe(0x04034b50);
    expect(archive.readUInt16LE(6) & 0x0008).toBe(0); // no data-descriptor flag
    expect(archive.readUInt16LE(6) & 0x0800).toBe(0x0800); // UTF-8 names
    expect(archive.readUInt32LE(14)).toBe(crc32(plugin));
    expect(archive.readUInt32LE(18)).toBe(plugin.length);
    expect(archive.readUInt32LE(22)).toBe(plugin.length);
    expect(archive.subarray(30, 30 + 19).toString()).toBe('dcx-plugin-data.bin');
    expect(archive.subarray(49, 49 + plugin.length).equals(plugin)).toBe(true);
  });

  test('Info-ZIP unzip -t and zipinfo accept it', () => {
    expect(execFileSync('unzip', ['-t', path]).toString()).toMatch(/No errors detected/);
    const listing = execFileSync('zipinfo', [path]).toString();
    expect(listing).toMatch(/2 files/);
    expect(listing).toContain('dcx-plugin-data.bin');
  });

  test("Python's zipfile reads both entries intact", () => {
    const script =
      'import sys, zipfile, hashlib\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nfor i in z.infolist(): ' +
      'print(i.filename, i.file_size, hashlib.sha256(z.read(i)).hexdigest())';
    const lines = execFileSync('python3', ['-c', script, path]).toString().trim().split('\n');
    expect(lines).toEqual([
      `dcx-plugin-data.bin ${plugin.length} ${createHash('sha256').update(plugin).digest('hex')}`,
      `clip – été.mp4 ${content.length} ${createHash('sha256').update(content).digest('hex')}`,
    ]);
  });

  test('unzipper reads it through the central directory and through its streaming parser', async () => {
    const directory = await unzipper.Open.file(path);
    expect(directory.files.map((f) => f.path)).toEqual(['dcx-plugin-data.bin', 'clip – été.mp4']);
    expect((await directory.files[1].buffer()).equals(content)).toBe(true);

    const streamed: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const parser = unzipper.Parse();
      parser.on('entry', (entry: unzipper.Entry) => void entry.buffer().then((bytes) => streamed.push(bytes)));
      parser.on('close', resolve);
      parser.on('error', reject);
      parser.end(archive);
    });
    await new Promise((r) => setImmediate(r));
    expect(streamed.map((b) => b.length)).toEqual([plugin.length, content.length]);
    expect(streamed[0].equals(plugin) && streamed[1].equals(content)).toBe(true);
  });

  test('every range equals the same bytes of the whole archive', () => {
    const points = [
      0,
      1,
      29,
      30,
      48,
      49,
      49 + plugin.length - 1,
      49 + plugin.length,
      1000,
      700_000,
      layout.size - 23,
      layout.size - 22,
      layout.size - 1,
    ];
    for (const start of points) {
      for (const end of points) {
        if (end < start) continue;
        // Buffer.equals, not toEqual: jest's deep equality walks megabytes element by element.
        expect(renderLayout(layout, start, end).equals(archive.subarray(start, end + 1))).toBe(true);
      }
    }
  });

  test('an empty content entry is valid', () => {
    const empty = layoutZip(
      [bufferEntry('dcx-plugin-data.bin', plugin), { name: 'empty.txt', size: 0, crc32: 0, source: Buffer.alloc(0) }],
      DATE,
    );
    const file = join(dir, 'empty.dcx');
    writeFileSync(file, renderLayout(empty));
    expect(execFileSync('unzip', ['-t', file]).toString()).toMatch(/No errors detected/);
  });

  test('over 4 GiB: ZIP64 records that unzip -t accepts', () => {
    // The content is 4 GiB + 1 MiB of zeros; the archive is written sparse (headers only), so the
    // holes read back as exactly that content without using the disk.
    const size = 4 * 1024 ** 3 + 1024 ** 2;
    const zeros = Buffer.alloc(64 * 1024 ** 2);
    let crc = 0;
    for (let left = size; left > 0; left -= zeros.length) crc = crc32(zeros.subarray(0, Math.min(left, zeros.length)), crc);
    const big = layoutZip<null>(
      [
        { name: 'dcx-plugin-data.bin', size: plugin.length, crc32: crc32(plugin), source: null },
        { name: 'big.bin', size, crc32: crc, source: null },
      ],
      DATE,
    );
    const file = join(dir, 'big.dcx');
    const fd = openSync(file, 'w');
    for (const segment of big.segments) {
      if (segment.kind === 'bytes') writeSync(fd, segment.bytes, 0, segment.bytes.length, segment.offset);
      else if (segment.length === plugin.length) writeSync(fd, plugin, 0, plugin.length, segment.offset);
    }
    closeSync(fd);
    execFileSync('truncate', ['-s', String(big.size), file]);
    const tail = Buffer.alloc(98);
    const read = openSync(file, 'r');
    readSync(read, tail, 0, tail.length, big.size - tail.length);
    closeSync(read);
    expect(tail.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true); // ZIP64 end record
    expect(execFileSync('unzip', ['-t', file], { maxBuffer: 1 << 20 }).toString()).toMatch(/No errors detected/);
    expect(execFileSync('zipinfo', [file]).toString()).toContain(String(size));
    rmSync(file);
    expect(readFileSync(path).length).toBe(layout.size);
  }, 120_000);
});
