import { crc32 } from 'node:zlib';

/*
 * A store-only ZIP writer for bundles, laid out before a byte is sent. Each entry's CRC-32 and size are
 * known in advance (the content's since upload), so local headers carry them (no data descriptors:
 * every streaming reader works), the total length is exact (Content-Length), and any byte range of the
 * bundle can be produced without reading what precedes it (HTTP Range, resumable downloads).
 * ZIP64 records are written only for what does not fit 32 bits. Layout: APPNOTE.TXT 6.3.x.
 */

const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const END_SIGNATURE = 0x06054b50;

const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const ZIP64_END_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
const END_SIZE = 22;
const ZIP64_EXTRA_ID = 0x0001;
const EXTRA_HEADER_SIZE = 4;

const VERSION_STORE = 10; // 1.0: stored entries
const VERSION_ZIP64 = 45; // 4.5: ZIP64 extensions
const MADE_BY_UNIX = 3 << 8;
const FLAG_UTF8_NAME = 0x0800;
const METHOD_STORE = 0;
const UNIX_REGULAR_FILE_0644 = (0o100644 << 16) >>> 0;

const MAX_32 = 0xffffffff;
const MAX_16 = 0xffff;

/** One entry: where its bytes come from is the caller's business (a buffer or a file). */
export interface ZipEntrySpec<Source> {
  name: string;
  size: number;
  crc32: number;
  source: Source;
}

export type ZipSegment<Source> =
  | { kind: 'bytes'; offset: number; bytes: Buffer }
  | { kind: 'source'; offset: number; length: number; source: Source };

export interface ZipLayout<Source> {
  /** Exact length of the archive. */
  size: number;
  /** Contiguous pieces in order: headers as bytes, entry data as references to their source. */
  segments: ZipSegment<Source>[];
}

/** A buffer entry: its CRC-32 computed here (small data such as the plug-in data). */
export function bufferEntry(name: string, bytes: Buffer): ZipEntrySpec<Buffer> {
  return { name, size: bytes.length, crc32: crc32(bytes), source: bytes };
}

function dosDateTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getUTCFullYear(), 1980), 2107);
  return {
    time: (date.getUTCHours() << 11) | (date.getUTCMinutes() << 5) | Math.floor(date.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((date.getUTCMonth() + 1) << 5) | date.getUTCDate(),
  };
}

function writeUInt64(buffer: Buffer, value: number, offset: number): number {
  return buffer.writeBigUInt64LE(BigInt(value), offset);
}

/** Lays out the archive. `date` is stamped on every entry, so equal inputs give equal bytes. */
export function layoutZip<Source>(entries: ZipEntrySpec<Source>[], date: Date): ZipLayout<Source> {
  if (entries.length > MAX_16) throw new RangeError(`a bundle holds at most ${MAX_16} entries`);
  const stamp = dosDateTime(date);
  const segments: ZipSegment<Source>[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  let needsZip64End = false;

  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    if (name.length > MAX_16) throw new RangeError(`entry name longer than ${MAX_16} bytes`);
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new RangeError(`bad entry size ${entry.size}`);
    const bigData = entry.size >= MAX_32;
    const bigOffset = offset >= MAX_32;
    needsZip64End ||= bigData || bigOffset;
    const version = bigData || bigOffset ? VERSION_ZIP64 : VERSION_STORE;

    // Local header: sizes and CRC in place; a ZIP64 extra carries both sizes when they overflow.
    const localExtra = bigData ? EXTRA_HEADER_SIZE + 16 : 0;
    const local = Buffer.alloc(LOCAL_HEADER_SIZE + name.length + localExtra);
    let at = local.writeUInt32LE(LOCAL_HEADER_SIGNATURE, 0);
    at = local.writeUInt16LE(version, at);
    at = local.writeUInt16LE(FLAG_UTF8_NAME, at);
    at = local.writeUInt16LE(METHOD_STORE, at);
    at = local.writeUInt16LE(stamp.time, at);
    at = local.writeUInt16LE(stamp.date, at);
    at = local.writeUInt32LE(entry.crc32 >>> 0, at);
    at = local.writeUInt32LE(bigData ? MAX_32 : entry.size, at);
    at = local.writeUInt32LE(bigData ? MAX_32 : entry.size, at);
    at = local.writeUInt16LE(name.length, at);
    at = local.writeUInt16LE(localExtra, at);
    at += name.copy(local, at);
    if (bigData) {
      at = local.writeUInt16LE(ZIP64_EXTRA_ID, at);
      at = local.writeUInt16LE(16, at);
      at = writeUInt64(local, entry.size, at);
      writeUInt64(local, entry.size, at);
    }
    segments.push({ kind: 'bytes', offset, bytes: local });
    const localOffset = offset;
    offset += local.length;
    if (entry.size > 0) segments.push({ kind: 'source', offset, length: entry.size, source: entry.source });
    offset += entry.size;

    // Central header: the ZIP64 extra holds, in this order, only the fields that overflowed.
    const centralExtra = (bigData ? 16 : 0) + (bigOffset ? 8 : 0);
    const header = Buffer.alloc(CENTRAL_HEADER_SIZE + name.length + (centralExtra ? EXTRA_HEADER_SIZE + centralExtra : 0));
    at = header.writeUInt32LE(CENTRAL_HEADER_SIGNATURE, 0);
    at = header.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, at);
    at = header.writeUInt16LE(version, at);
    at = header.writeUInt16LE(FLAG_UTF8_NAME, at);
    at = header.writeUInt16LE(METHOD_STORE, at);
    at = header.writeUInt16LE(stamp.time, at);
    at = header.writeUInt16LE(stamp.date, at);
    at = header.writeUInt32LE(entry.crc32 >>> 0, at);
    at = header.writeUInt32LE(bigData ? MAX_32 : entry.size, at);
    at = header.writeUInt32LE(bigData ? MAX_32 : entry.size, at);
    at = header.writeUInt16LE(name.length, at);
    at = header.writeUInt16LE(centralExtra ? EXTRA_HEADER_SIZE + centralExtra : 0, at);
    at = header.writeUInt16LE(0, at); // comment length
    at = header.writeUInt16LE(0, at); // disk number start
    at = header.writeUInt16LE(0, at); // internal attributes
    at = header.writeUInt32LE(UNIX_REGULAR_FILE_0644, at);
    at = header.writeUInt32LE(bigOffset ? MAX_32 : localOffset, at);
    at += name.copy(header, at);
    if (centralExtra) {
      at = header.writeUInt16LE(ZIP64_EXTRA_ID, at);
      at = header.writeUInt16LE(centralExtra, at);
      if (bigData) {
        at = writeUInt64(header, entry.size, at);
        at = writeUInt64(header, entry.size, at);
      }
      if (bigOffset) writeUInt64(header, localOffset, at);
    }
    central.push(header);
  }

  const centralOffset = offset;
  const centralSize = central.reduce((sum, header) => sum + header.length, 0);
  needsZip64End ||= centralOffset >= MAX_32;
  const tail: Buffer[] = [...central];
  if (needsZip64End) {
    const zip64End = Buffer.alloc(ZIP64_END_SIZE);
    let at = zip64End.writeUInt32LE(ZIP64_END_SIGNATURE, 0);
    at = writeUInt64(zip64End, ZIP64_END_SIZE - 12, at); // size of the rest of this record
    at = zip64End.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, at);
    at = zip64End.writeUInt16LE(VERSION_ZIP64, at);
    at = zip64End.writeUInt32LE(0, at); // this disk
    at = zip64End.writeUInt32LE(0, at); // disk with the central directory
    at = writeUInt64(zip64End, entries.length, at);
    at = writeUInt64(zip64End, entries.length, at);
    at = writeUInt64(zip64End, centralSize, at);
    writeUInt64(zip64End, centralOffset, at);
    const locator = Buffer.alloc(ZIP64_LOCATOR_SIZE);
    at = locator.writeUInt32LE(ZIP64_LOCATOR_SIGNATURE, 0);
    at = locator.writeUInt32LE(0, at);
    at = writeUInt64(locator, centralOffset + centralSize, at);
    locator.writeUInt32LE(1, at); // total disks
    tail.push(zip64End, locator);
  }
  const end = Buffer.alloc(END_SIZE);
  let at = end.writeUInt32LE(END_SIGNATURE, 0);
  at = end.writeUInt16LE(0, at);
  at = end.writeUInt16LE(0, at);
  at = end.writeUInt16LE(entries.length, at);
  at = end.writeUInt16LE(entries.length, at);
  at = end.writeUInt32LE(Math.min(centralSize, MAX_32), at);
  at = end.writeUInt32LE(needsZip64End ? MAX_32 : centralOffset, at);
  end.writeUInt16LE(0, at); // comment length
  tail.push(end);

  const tailBytes = Buffer.concat(tail);
  segments.push({ kind: 'bytes', offset, bytes: tailBytes });
  return { size: offset + tailBytes.length, segments };
}

/** A piece of a byte range: bytes to send, or `length` bytes of a source from `start` within it. */
export type ZipPiece<Source> = { kind: 'bytes'; bytes: Buffer } | { kind: 'source'; source: Source; start: number; length: number };

/** The pieces of [start, end] (inclusive), each trimmed to the range: what a Range response sends. */
export function sliceLayout<Source>(layout: ZipLayout<Source>, start: number, end: number): ZipPiece<Source>[] {
  const pieces: ZipPiece<Source>[] = [];
  for (const segment of layout.segments) {
    const length = segment.kind === 'bytes' ? segment.bytes.length : segment.length;
    const from = Math.max(start, segment.offset);
    const to = Math.min(end + 1, segment.offset + length);
    if (from >= to) continue;
    if (segment.kind === 'bytes') {
      pieces.push({ kind: 'bytes', bytes: segment.bytes.subarray(from - segment.offset, to - segment.offset) });
    } else {
      pieces.push({ kind: 'source', source: segment.source, start: from - segment.offset, length: to - from });
    }
  }
  return pieces;
}
