import { Injectable } from '@nestjs/common';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { PLUGIN_ENTRY_NAME } from '../../protocol/constants.js';
import { bufferEntry, layoutZip, sliceLayout, ZipLayout } from '../../protocol/zip-layout.js';
import { TickBatch } from '../common/tick-batch.js';
import { ContentStorage, READ_HIGH_WATER_MARK, SMALL_FILE_MAX } from '../contents/content-storage.js';
import { Content } from '../contents/content.entity.js';

/** Where bundle bytes come from: the plug-in data in memory, or the stored content file. */
type BundleEntrySource = Buffer | Content;

export type BundleLayout = ZipLayout<BundleEntrySource>;

/** Read buffers of all bundles being sent share this budget: 200 downloads must not take 2 MiB each. */
const READ_BUFFER_BUDGET = 64 * 1024 * 1024;
const MIN_READ_SIZE = 64 * 1024;
/** Read buffers of finished bundles kept for the next ones, at most (see ReadBuffers). */
const KEPT_READ_BUFFERS_BYTES = 8 * 1024 * 1024;

/**
 * Full-size (READ_HIGH_WATER_MARK) read buffers handed on from finished bundles to the next ones: V8 frees
 * old-generation buffers only at a full collection, so without reuse the server's memory grew with each
 * large download (docs/PERFORMANCE.md). Smaller ones are not kept: sizes no longer asked for would hold
 * memory for nothing.
 */
class ReadBuffers {
  private readonly free: Buffer[] = [];

  take(size: number): Buffer {
    return (size === READ_HIGH_WATER_MARK ? this.free.pop() : undefined) ?? Buffer.allocUnsafe(size);
  }

  /** Only buffers no write refers to any more: their bytes are overwritten by the next bundle's reads. */
  give(buffers: Buffer[]): void {
    for (const buffer of buffers) {
      if (buffer.length === READ_HIGH_WATER_MARK && (this.free.length + 1) * READ_HIGH_WATER_MARK <= KEPT_READ_BUFFERS_BYTES)
        this.free.push(buffer);
    }
  }
}

/** The response's connection closed before the bundle was written. */
export class ConnectionClosedError extends Error {
  constructor() {
    super('the connection was closed');
  }
}

/**
 * Writes a chunk; resolves once the destination is done with it (so its buffer may be reused). With
 * `last`, ends the destination with it and resolves once it has finished (every byte handed over).
 */
function writeChunk(out: Writable, chunk: Buffer, last = false): Promise<void> {
  return new Promise((resolve, reject) => {
    // A destroyed response drops writes without calling back: its close is the answer.
    if (out.destroyed || out.closed) return reject(new ConnectionClosedError());
    const closed = () => reject(new ConnectionClosedError());
    out.once('close', closed);
    const done = (error?: Error | null) => {
      out.off('close', closed);
      if (error) reject(error);
      else resolve();
    };
    if (last) out.end(chunk, done);
    else out.write(chunk, done);
  });
}

/**
 * [87] Merges plug-in data and content into one .dcx: plug-in data first, content stored as uploaded.
 * The content's CRC-32 was computed at upload, so nothing is hashed per delivery, the length is exact,
 * and any byte range can be produced on its own.
 */
@Injectable()
export class BundleWriter {
  /** Bundles being streamed from disk right now. */
  private streaming = 0;
  private readonly readBuffers = new ReadBuffers();

  /**
   * Small pieces of large stored files (the tail of a resumed download), read once per turn of the event
   * loop for all the requests that asked for the same piece during it; each copies it into its own buffer.
   * Small files (a 10 KiB bundle's content) come whole from ContentStorage.readSmall instead.
   * Keys are JSON [storageKey, start, length, content id, content size].
   */
  private readonly smallPieces = new TickBatch<string, Buffer>((keys) =>
    Promise.all(keys.map((key) => this.readPiece(...(JSON.parse(key) as [string, number, number, string, number])))),
  );

  constructor(private readonly storage: ContentStorage) {}

  private async readPiece(storageKey: string, start: number, length: number, contentId: string, contentSize: number): Promise<Buffer> {
    const bytes = Buffer.allocUnsafe(length);
    const file = await open(this.storage.pathOf(storageKey), 'r');
    try {
      for (let done = 0; done < length;) {
        const { bytesRead } = await file.read(bytes, done, length - done, start + done);
        if (bytesRead === 0) throw new Error(`the stored file of content ${contentId} is shorter than ${contentSize} bytes`);
        done += bytesRead;
      }
    } finally {
      await file.close();
    }
    return bytes;
  }

  /** 1 MiB reads for a few downloads at a time, smaller ones (down to 64 KiB) when many share the budget. */
  private readSize(): number {
    const share = Math.floor(READ_BUFFER_BUDGET / (2 * this.streaming) / MIN_READ_SIZE) * MIN_READ_SIZE;
    return Math.max(MIN_READ_SIZE, Math.min(READ_HIGH_WATER_MARK, share));
  }

  layout(pluginData: Buffer, content: Content): BundleLayout {
    return layoutZip<BundleEntrySource>(
      [bufferEntry(PLUGIN_ENTRY_NAME, pluginData), { name: content.name, size: content.size, crc32: content.crc32, source: content }],
      content.createdAt,
    );
  }

  /**
   * Writes the bytes [start, end] (inclusive) of a bundle to `out` and ends it; resolves once `out` has
   * finished, so the last byte has left. The stored content
   * is read into two buffers used in turn (one read while the other is being sent), 1 MiB each unless
   * many downloads run at once, so memory stays flat whatever the bundle's size and bounded whatever
   * their number. `sent` is told every byte count handed over.
   */
  async write(layout: BundleLayout, start: number, end: number, out: Writable, sent: (bytes: number) => void): Promise<void> {
    if (end - start + 1 <= READ_HIGH_WATER_MARK) {
      // A small range (10 KiB bundles, the tail of a resumed download): one buffer, written as it ends.
      const whole = await this.read(layout, start, end);
      await writeChunk(out, whole, true);
      return sent(whole.length);
    }
    for (const piece of sliceLayout(layout, start, end)) {
      if (piece.kind === 'bytes' || Buffer.isBuffer(piece.source)) {
        const bytes = piece.kind === 'bytes' ? piece.bytes : (piece.source as Buffer).subarray(piece.start, piece.start + piece.length);
        await writeChunk(out, bytes);
        sent(bytes.length);
        continue;
      }
      const file = await open(this.storage.pathOf(piece.source.storageKey), 'r');
      this.streaming++;
      try {
        const size = Math.min(this.readSize(), piece.length);
        const buffers: Buffer[] = [];
        let writing: Promise<void> = Promise.resolve();
        for (let done = 0, turn = 0; done < piece.length; turn ^= 1) {
          buffers[turn] ??= this.readBuffers.take(size);
          // This buffer's previous write finished before the one now in flight was started.
          const { bytesRead } = await file.read(buffers[turn], 0, Math.min(size, piece.length - done), piece.start + done);
          if (bytesRead === 0) throw new Error(`the stored file of content ${piece.source.id} is shorter than ${piece.source.size} bytes`);
          await writing;
          const chunk = buffers[turn].subarray(0, bytesRead);
          writing = writeChunk(out, chunk).then(() => sent(chunk.length));
          writing.catch(() => undefined); // awaited below; no unhandled rejection while the next read runs
          done += bytesRead;
        }
        await writing;
        // Every write called back: the buffers are free. (After a failure a destroyed response may still
        // hold one; those are left to the garbage collector.)
        this.readBuffers.give(buffers);
      } finally {
        this.streaming--;
        await file.close();
      }
    }
    await writeChunk(out, Buffer.alloc(0), true);
  }

  /** The bytes [start, end] of a bundle in one buffer (for small ranges). */
  private async read(layout: BundleLayout, start: number, end: number): Promise<Buffer> {
    const whole = Buffer.allocUnsafe(end - start + 1);
    let at = 0;
    for (const piece of sliceLayout(layout, start, end)) {
      if (piece.kind === 'bytes') at += piece.bytes.copy(whole, at);
      else if (Buffer.isBuffer(piece.source)) at += piece.source.copy(whole, at, piece.start, piece.start + piece.length);
      else if (piece.source.size <= SMALL_FILE_MAX) {
        const file = await this.storage.readSmall(piece.source.storageKey, piece.source.size);
        at += file.copy(whole, at, piece.start, piece.start + piece.length);
      } else {
        const bytes = await this.smallPieces.get(
          JSON.stringify([piece.source.storageKey, piece.start, piece.length, piece.source.id, piece.source.size]),
        );
        at += bytes.copy(whole, at);
      }
    }
    return whole;
  }
}
