import {
  EXTRA_HEADER_SIZE,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  LOCAL_COMPRESSED_SIZE_OFFSET,
  LOCAL_CRC32_OFFSET,
  LOCAL_EXTRA_LENGTH_OFFSET,
  LOCAL_FLAGS_OFFSET,
  LOCAL_HEADER_SIGNATURE,
  LOCAL_HEADER_SIZE,
  LOCAL_METHOD_OFFSET,
  LOCAL_NAME_LENGTH_OFFSET,
  LOCAL_UNCOMPRESSED_SIZE_OFFSET,
  localHeaderLength,
  MAX_32,
  METHOD_STORE,
  ZIP64_EXTRA_ID,
  ZIP64_FIELD_SIZE,
  ZIP_SIGNATURE_SIZE,
} from './zip-format.js';

/*
 * Reads a ZIP archive as it streams past, one chunk at a time, and tells which bytes are the data of
 * entries that can be kept apart: stored (not compressed, not encrypted) with their sizes in the
 * local header, as `layoutZip` writes them. The data of such an entry is known to be exactly `size`
 * bytes long before the first of them arrives, so it can be written to a file of its own (and hashed)
 * as it arrives; every other byte (headers, the data of other entries, the central directory) is
 * "meta". The pieces are views of the chunk given, which the splitter does not keep: the caller may
 * reuse it once done with them.
 *
 * An entry whose length its local header does not give (bit 3: a data descriptor follows the data)
 * ends the reading: from there on every byte is meta, and the caller reads the archive through its
 * central directory as any ZIP. So does anything that is not a local header where one is expected
 * (the central directory, or bytes that are not a ZIP at all). Layout: APPNOTE.TXT 4.3.7, 4.5.3.
 */

/** One entry as its local header describes it. */
export interface StreamedEntry {
  /** 0 for the archive's first entry. */
  index: number;
  /** The name's bytes as UTF-8 (the central directory has the last word on names). */
  name: string;
  /** Archive offset of the local header. */
  headerOffset: number;
  /** Archive offset of the first data byte. */
  dataOffset: number;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
}

export type ZipStreamPiece =
  /** Bytes that are not the data of a split entry, in archive order. */
  | { kind: 'meta'; bytes: Buffer }
  /** A split entry's header is complete: its `compressedSize` data bytes follow (as 'data' pieces). */
  | { kind: 'entry'; entry: StreamedEntry }
  | { kind: 'data'; entry: StreamedEntry; bytes: Buffer };

/** Which entries to keep apart; only asked about stored, unencrypted entries with known sizes. */
export type SplitPolicy = (entry: StreamedEntry) => boolean;

type State =
  | { kind: 'header'; have: Buffer[]; length: number; need: number }
  | { kind: 'data'; entry: StreamedEntry; split: boolean; remaining: number }
  | { kind: 'rest' };

export class ZipStreamSplitter {
  private state: State = newHeaderState();
  private entries = 0;
  private consumed = 0;

  /** `split`: which entries to keep apart (none, when reading an archive known to be kept whole). */
  constructor(private readonly split: SplitPolicy) {}

  /** Archive bytes read so far. */
  get offset(): number {
    return this.consumed;
  }

  /** True once the entries can no longer be followed: every further byte is meta. */
  get ended(): boolean {
    return this.state.kind === 'rest';
  }

  /**
   * How many of the next bytes are meta that need not be looked at (the data of an entry not split,
   * or anything once ended); `skip` passes over up to that many without reading them.
   */
  get skippable(): number {
    const state = this.state;
    if (state.kind === 'rest') return Number.POSITIVE_INFINITY;
    return state.kind === 'data' && !state.split ? state.remaining : 0;
  }

  skip(n: number): void {
    if (n > this.skippable || n < 0) throw new RangeError(`cannot skip ${n} bytes here`);
    const state = this.state;
    if (state.kind === 'data') {
      state.remaining -= n;
      if (state.remaining === 0) this.state = newHeaderState();
    }
    this.consumed += n;
  }

  /** Cuts `chunk` (the next bytes of the archive) into pieces, in order. */
  write(chunk: Buffer): ZipStreamPiece[] {
    const pieces: ZipStreamPiece[] = [];
    let at = 0;
    while (at < chunk.length) {
      const state = this.state;
      if (state.kind === 'rest') {
        pieces.push({ kind: 'meta', bytes: at === 0 ? chunk : chunk.subarray(at) });
        at = chunk.length;
      } else if (state.kind === 'data') {
        const n = Math.min(state.remaining, chunk.length - at);
        const bytes = n === chunk.length ? chunk : chunk.subarray(at, at + n);
        pieces.push(state.split ? { kind: 'data', entry: state.entry, bytes } : { kind: 'meta', bytes });
        at += n;
        state.remaining -= n;
        if (state.remaining === 0) this.state = newHeaderState();
      } else {
        const n = Math.min(state.need - state.length, chunk.length - at);
        const bytes = chunk.subarray(at, at + n);
        pieces.push({ kind: 'meta', bytes });
        // A copy: the caller may reuse `chunk` once this returns, and a header may span chunks.
        state.have.push(Buffer.from(bytes));
        state.length += n;
        at += n;
        if (state.length === state.need) this.headerProgress(state, pieces, this.consumed + at);
      }
    }
    this.consumed += chunk.length;
    return pieces;
  }

  /**
   * A header has the bytes it asked for (`end`: the archive offset after them): ask for more (name,
   * extra field), or decide what follows.
   */
  private headerProgress(state: Extract<State, { kind: 'header' }>, pieces: ZipStreamPiece[], end: number): void {
    const header = state.have.length === 1 ? state.have[0] : Buffer.concat(state.have, state.length);
    state.have = [header];
    // The signature is judged on its own bytes: what follows the entries ends the reading at once.
    if (header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
      this.state = { kind: 'rest' };
      return;
    }
    const full = header.length < LOCAL_HEADER_SIZE ? LOCAL_HEADER_SIZE : localHeaderLength(header);
    if (state.need < full) {
      state.need = full;
      return;
    }
    const entry = parseLocalHeader(header, this.entries, end - header.length);
    this.entries++;
    if (!entry || entry.flags & FLAG_DATA_DESCRIPTOR) {
      this.state = { kind: 'rest' };
      return;
    }
    const splittable = entry.method === METHOD_STORE && !(entry.flags & FLAG_ENCRYPTED) && entry.compressedSize === entry.uncompressedSize;
    const split = splittable && this.split(entry);
    if (split) pieces.push({ kind: 'entry', entry });
    this.state = entry.compressedSize === 0 ? newHeaderState() : { kind: 'data', entry, split, remaining: entry.compressedSize };
  }
}

function newHeaderState(): State {
  return { kind: 'header', have: [], length: 0, need: ZIP_SIGNATURE_SIZE };
}

/** The entry a complete local header describes, or null when its sizes cannot be read. */
function parseLocalHeader(header: Buffer, index: number, headerOffset: number): StreamedEntry | null {
  const nameLength = header.readUInt16LE(LOCAL_NAME_LENGTH_OFFSET);
  const extraLength = header.readUInt16LE(LOCAL_EXTRA_LENGTH_OFFSET);
  let compressedSize = header.readUInt32LE(LOCAL_COMPRESSED_SIZE_OFFSET);
  let uncompressedSize = header.readUInt32LE(LOCAL_UNCOMPRESSED_SIZE_OFFSET);
  if (compressedSize === MAX_32 || uncompressedSize === MAX_32) {
    // ZIP64: the extra field holds the sizes that overflowed, uncompressed first.
    const sizes = zip64Sizes(
      header.subarray(LOCAL_HEADER_SIZE + nameLength, LOCAL_HEADER_SIZE + nameLength + extraLength),
      uncompressedSize === MAX_32,
      compressedSize === MAX_32,
    );
    if (!sizes) return null;
    if (uncompressedSize === MAX_32) uncompressedSize = sizes.shift()!;
    if (compressedSize === MAX_32) compressedSize = sizes.shift()!;
  }
  return {
    index,
    name: header.subarray(LOCAL_HEADER_SIZE, LOCAL_HEADER_SIZE + nameLength).toString('utf8'),
    headerOffset,
    dataOffset: headerOffset + header.length,
    method: header.readUInt16LE(LOCAL_METHOD_OFFSET),
    flags: header.readUInt16LE(LOCAL_FLAGS_OFFSET),
    crc32: header.readUInt32LE(LOCAL_CRC32_OFFSET),
    compressedSize,
    uncompressedSize,
  };
}

/** The 8-byte sizes of a ZIP64 extra field, or null when it is missing, short, or beyond 2^53 − 1. */
function zip64Sizes(extra: Buffer, uncompressed: boolean, compressed: boolean): number[] | null {
  for (let at = 0; at + EXTRA_HEADER_SIZE <= extra.length;) {
    const id = extra.readUInt16LE(at);
    const size = extra.readUInt16LE(at + 2);
    const body = extra.subarray(at + EXTRA_HEADER_SIZE, at + EXTRA_HEADER_SIZE + size);
    if (id === ZIP64_EXTRA_ID) {
      const count = Number(uncompressed) + Number(compressed);
      if (body.length < ZIP64_FIELD_SIZE * count) return null;
      const sizes: number[] = [];
      for (let i = 0; i < count; i++) {
        const value = body.readBigUInt64LE(ZIP64_FIELD_SIZE * i);
        if (value > BigInt(Number.MAX_SAFE_INTEGER)) return null;
        sizes.push(Number(value));
      }
      return sizes;
    }
    at += EXTRA_HEADER_SIZE + size;
  }
  return null;
}
