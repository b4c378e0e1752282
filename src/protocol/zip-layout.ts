import { crc32 } from 'node:zlib';
import {
  CENTRAL_HEADER_SIGNATURE,
  CENTRAL_HEADER_SIZE,
  END_SIGNATURE,
  END_SIZE,
  EXTRA_HEADER_SIZE,
  FLAG_UTF8_NAME,
  LOCAL_HEADER_SIGNATURE,
  LOCAL_HEADER_SIZE,
  MADE_BY_UNIX,
  MAX_16,
  MAX_32,
  METHOD_STORE,
  UNIX_REGULAR_FILE_0644,
  VERSION_STORE,
  VERSION_ZIP64,
  ZIP64_END_SIGNATURE,
  ZIP64_END_SIZE,
  ZIP64_EXTRA_ID,
  ZIP64_FIELD_SIZE,
  ZIP64_LOCATOR_SIGNATURE,
  ZIP64_LOCATOR_SIZE,
} from './zip-format.js';

/*
 * A store-only ZIP writer for bundles, laid out before a byte is sent. Each entry's CRC-32 and size are
 * known in advance (the content's since upload), so local headers carry them (no data descriptors:
 * every streaming reader works), the total length is exact (Content-Length), and any byte range of the
 * bundle can be produced without reading what precedes it (HTTP Range, resumable downloads).
 * ZIP64 records are written only for what does not fit 32 bits. Layout: APPNOTE.TXT 6.3.x.
 */

/** One entry: where its bytes come from is the caller's business (a buffer or a file). */
export interface ZipEntrySpec<Source> {
  name: string;
  size: number;
  crc32: number;
  source: Source;
}

export type ZipSegment<Source> =
  { kind: 'bytes'; offset: number; bytes: Buffer } | { kind: 'source'; offset: number; length: number; source: Source };

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

interface DosStamp {
  time: number;
  date: number;
}

function dosDateTime(date: Date): DosStamp {
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
    const placed = placeEntry(entry, offset);
    needsZip64End ||= placed.bigData || placed.bigOffset;
    const local = localHeader(placed, stamp);
    segments.push({ kind: 'bytes', offset, bytes: local });
    offset += local.length;
    if (entry.size > 0) segments.push({ kind: 'source', offset, length: entry.size, source: entry.source });
    offset += entry.size;
    central.push(centralHeader(placed, stamp));
  }

  const centralOffset = offset;
  const centralSize = central.reduce((sum, header) => sum + header.length, 0);
  needsZip64End ||= centralOffset >= MAX_32;
  const tail: Buffer[] = [...central];
  if (needsZip64End) tail.push(zip64EndRecord(entries.length, centralSize, centralOffset), zip64Locator(centralOffset + centralSize));
  tail.push(endRecord(entries.length, centralSize, needsZip64End ? MAX_32 : centralOffset));
  const tailBytes = Buffer.concat(tail);
  segments.push({ kind: 'bytes', offset, bytes: tailBytes });
  return { size: offset + tailBytes.length, segments };
}

/** An entry at its archive offset, with what overflows 32 bits. */
interface PlacedEntry {
  name: Buffer;
  size: number;
  crc32: number;
  localOffset: number;
  bigData: boolean;
  bigOffset: boolean;
  version: number;
}

function placeEntry(entry: ZipEntrySpec<unknown>, localOffset: number): PlacedEntry {
  const name = Buffer.from(entry.name, 'utf8');
  if (name.length > MAX_16) throw new RangeError(`entry name longer than ${MAX_16} bytes`);
  if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new RangeError(`bad entry size ${entry.size}`);
  const bigData = entry.size >= MAX_32;
  const bigOffset = localOffset >= MAX_32;
  const version = bigData || bigOffset ? VERSION_ZIP64 : VERSION_STORE;
  return { name, size: entry.size, crc32: entry.crc32 >>> 0, localOffset, bigData, bigOffset, version };
}

/** The fields local and central headers share, from "version needed" to the extra field's length. */
function writeEntryFields(header: Buffer, at: number, entry: PlacedEntry, stamp: DosStamp, extraLength: number): number {
  at = header.writeUInt16LE(entry.version, at);
  at = header.writeUInt16LE(FLAG_UTF8_NAME, at);
  at = header.writeUInt16LE(METHOD_STORE, at);
  at = header.writeUInt16LE(stamp.time, at);
  at = header.writeUInt16LE(stamp.date, at);
  at = header.writeUInt32LE(entry.crc32, at);
  at = header.writeUInt32LE(entry.bigData ? MAX_32 : entry.size, at);
  at = header.writeUInt32LE(entry.bigData ? MAX_32 : entry.size, at);
  at = header.writeUInt16LE(entry.name.length, at);
  return header.writeUInt16LE(extraLength, at);
}

/** Local header: sizes and CRC in place; a ZIP64 extra carries both sizes when they overflow. */
function localHeader(entry: PlacedEntry, stamp: DosStamp): Buffer {
  const extra = entry.bigData ? EXTRA_HEADER_SIZE + 2 * ZIP64_FIELD_SIZE : 0;
  const local = Buffer.alloc(LOCAL_HEADER_SIZE + entry.name.length + extra);
  let at = local.writeUInt32LE(LOCAL_HEADER_SIGNATURE, 0);
  at = writeEntryFields(local, at, entry, stamp, extra);
  at += entry.name.copy(local, at);
  if (entry.bigData) {
    at = local.writeUInt16LE(ZIP64_EXTRA_ID, at);
    at = local.writeUInt16LE(2 * ZIP64_FIELD_SIZE, at);
    at = writeUInt64(local, entry.size, at);
    writeUInt64(local, entry.size, at);
  }
  return local;
}

/** Central header: the ZIP64 extra holds, in this order, only the fields that overflowed. */
function centralHeader(entry: PlacedEntry, stamp: DosStamp): Buffer {
  const zip64 = (entry.bigData ? 2 * ZIP64_FIELD_SIZE : 0) + (entry.bigOffset ? ZIP64_FIELD_SIZE : 0);
  const extra = zip64 ? EXTRA_HEADER_SIZE + zip64 : 0;
  const header = Buffer.alloc(CENTRAL_HEADER_SIZE + entry.name.length + extra);
  let at = header.writeUInt32LE(CENTRAL_HEADER_SIGNATURE, 0);
  at = header.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, at);
  at = writeEntryFields(header, at, entry, stamp, extra);
  at = header.writeUInt16LE(0, at); // comment length
  at = header.writeUInt16LE(0, at); // disk number start
  at = header.writeUInt16LE(0, at); // internal attributes
  at = header.writeUInt32LE(UNIX_REGULAR_FILE_0644, at);
  at = header.writeUInt32LE(entry.bigOffset ? MAX_32 : entry.localOffset, at);
  at += entry.name.copy(header, at);
  if (zip64) {
    at = header.writeUInt16LE(ZIP64_EXTRA_ID, at);
    at = header.writeUInt16LE(zip64, at);
    if (entry.bigData) {
      at = writeUInt64(header, entry.size, at);
      at = writeUInt64(header, entry.size, at);
    }
    if (entry.bigOffset) writeUInt64(header, entry.localOffset, at);
  }
  return header;
}

function zip64EndRecord(entryCount: number, centralSize: number, centralOffset: number): Buffer {
  const record = Buffer.alloc(ZIP64_END_SIZE);
  let at = record.writeUInt32LE(ZIP64_END_SIGNATURE, 0);
  at = writeUInt64(record, ZIP64_END_SIZE - 12, at); // size of the rest of this record
  at = record.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, at);
  at = record.writeUInt16LE(VERSION_ZIP64, at);
  at = record.writeUInt32LE(0, at); // this disk
  at = record.writeUInt32LE(0, at); // disk with the central directory
  at = writeUInt64(record, entryCount, at);
  at = writeUInt64(record, entryCount, at);
  at = writeUInt64(record, centralSize, at);
  writeUInt64(record, centralOffset, at);
  return record;
}

function zip64Locator(zip64EndOffset: number): Buffer {
  const locator = Buffer.alloc(ZIP64_LOCATOR_SIZE);
  let at = locator.writeUInt32LE(ZIP64_LOCATOR_SIGNATURE, 0);
  at = locator.writeUInt32LE(0, at);
  at = writeUInt64(locator, zip64EndOffset, at);
  locator.writeUInt32LE(1, at); // total disks
  return locator;
}

/** `centralOffset`: MAX_32 when a ZIP64 end record holds it. */
function endRecord(entryCount: number, centralSize: number, centralOffset: number): Buffer {
  const end = Buffer.alloc(END_SIZE);
  let at = end.writeUInt32LE(END_SIGNATURE, 0);
  at = end.writeUInt16LE(0, at);
  at = end.writeUInt16LE(0, at);
  at = end.writeUInt16LE(entryCount, at);
  at = end.writeUInt16LE(entryCount, at);
  at = end.writeUInt32LE(Math.min(centralSize, MAX_32), at);
  at = end.writeUInt32LE(centralOffset, at);
  end.writeUInt16LE(0, at); // comment length
  return end;
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
