import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

const READ_CHUNK = 1024 * 1024;

/**
 * The data of a stored entry that `dcx fetch` wrote to a file of its own while downloading, hashing
 * it on the way; what its local header said about it.
 */
export interface KeptEntry {
  name: string;
  /** Bundle offsets of its local header and of its first data byte. */
  headerOffset: number;
  dataOffset: number;
  size: number;
  crc32: number;
  /** The file holding exactly its data. */
  path: string;
  sha256: string;
}

/** A stretch of a file: `length` bytes from `start`. */
export interface FilePiece {
  path: string;
  start: number;
  length: number;
}

/**
 * The bytes of a bundle: one file (`dcx open`, a download kept whole), or a download whose content
 * entries were kept apart: pieces of files that, end to end, are the bundle as the server sent it.
 */
export interface BundleSource {
  size(): Promise<number>;
  /** Bytes `start` to `end` inclusive (to the end when `end` is absent), as `fs.createReadStream` reads. */
  stream(start: number, end?: number): Readable;
  /** Entries whose data is in a file of its own, with its SHA-256. */
  readonly kept: readonly KeptEntry[];
}

/** A bundle that is one file. */
export function fileSource(path: string): BundleSource {
  return {
    size: async () => (await stat(path)).size,
    stream: (start, end) => createReadStream(path, { start, end, highWaterMark: READ_CHUNK }),
    kept: [],
  };
}

/** A bundle made of file pieces, in order. */
export function piecedSource(pieces: FilePiece[], kept: KeptEntry[]): BundleSource {
  const size = pieces.reduce((sum, p) => sum + p.length, 0);
  return {
    size: () => Promise.resolve(size),
    stream: (start, end = size - 1) => Readable.from(readPieces(pieces, start, Math.min(end, size - 1))),
    kept,
  };
}

async function* readPieces(pieces: FilePiece[], start: number, end: number): AsyncGenerator<Buffer> {
  let pieceStart = 0;
  for (const piece of pieces) {
    const pieceEnd = pieceStart + piece.length;
    const from = Math.max(start, pieceStart);
    const to = Math.min(end + 1, pieceEnd);
    if (from < to) {
      const first = piece.start + (from - pieceStart);
      yield* createReadStream(piece.path, {
        start: first,
        end: first + (to - from) - 1,
        highWaterMark: READ_CHUNK,
      }) as AsyncIterable<Buffer>;
    }
    pieceStart = pieceEnd;
  }
}

/** Exactly `length` bytes from `start`, or fewer when the source ends first. */
export async function readRange(source: BundleSource, start: number, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source.stream(start, start + length - 1) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
