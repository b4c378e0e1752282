import { createHash, Hash } from 'node:crypto';
import { FileHandle, open, stat } from 'node:fs/promises';
import { StreamedEntry, ZipStreamPiece, ZipStreamSplitter } from '../../protocol/zip-stream.js';
import { BundleSource, FilePiece, KeptEntry, piecedSource } from './bundle-source.js';
import { errnoCode } from '../errors.js';
import { DownloadState, KeptData, PendingDownload } from './state.js';
import { trackTemp } from '../temp-files.js';

/**
 * Bytes to a file are written in blocks of this size, at most this many at once per file: larger
 * blocks leave the CPU cache before they are written (docs/PERFORMANCE.md, the download writer).
 */
const WRITE_BLOCK = 1024 * 1024;
const WRITE_BLOCKS = 4;
const READ_CHUNK = 1024 * 1024;

/** The bundle's content entries are kept apart; its first entry (the plug-in data) stays in the partial bundle. */
const keepContents = (entry: StreamedEntry) => entry.index > 0;

/** An entry kept apart, as far as it got. */
interface Kept {
  entry: StreamedEntry;
  path: string;
  hash: Hash;
  written: number;
  sha256: string | null;
}

/**
 * Writes a bundle as it downloads, each byte once: the data of each content entry stored with its
 * size in its local header (what the server writes) goes to a file of its own under DCX_HOME/downloads
 * and is hashed on the way; every other byte goes to the partial bundle. End to end, the pieces are
 * the bundle as sent (`source()`), which `Bundle` then reads like any bundle file, taking the kept
 * entries' files and digests as they are. A bundle laid out otherwise (data descriptors, compressed
 * entries, not a ZIP) is simply kept whole in the partial bundle.
 *
 * Resumable downloads keep the layout in their saved state, saved before the first data byte of each
 * kept entry (and the partial bundle is flushed first), so the files on disk are always a prefix of
 * the bundle that `resume` can read back.
 */
export class DownloadWriter {
  private readonly splitter: ZipStreamSplitter;
  private readonly kept: Kept[] = [];
  private readonly meta: Appender;
  private current: { kept: Kept; file: Appender } | null = null;
  /** Reading back what is on disk (`resume`): nothing is written. */
  private replaying = false;
  /** Data bytes of kept entries taken so far. */
  private dataTaken = 0;

  private constructor(
    private readonly pending: PendingDownload,
    /** The saved state (resumable) or null; its `entries` grow as entries are kept apart. */
    private readonly state: DownloadState | null,
    split: boolean,
    /** Resuming: the kept entries the saved state lists, which reading back must find again. */
    private readonly expected: KeptData[] = [],
  ) {
    this.splitter = new ZipStreamSplitter(split ? keepContents : () => false);
    this.meta = new Appender(pending.partPath, 0o600);
  }

  /**
   * A download from the first byte; whatever the pending download held is gone (discarded by the
   * caller). `state`: the download can be resumed, and its state is saved before the first byte;
   * null: it cannot, and every file is a temp file (removed on Ctrl-C).
   */
  static async start(pending: PendingDownload, state: DownloadState | null): Promise<DownloadWriter> {
    const writer = new DownloadWriter(pending, state && { ...state, entries: [] }, true);
    if (writer.state) await pending.save(writer.state);
    else trackTemp(pending.partPath);
    await writer.meta.create();
    return writer;
  }

  /**
   * The download so far, read back from its files: the headers are parsed again and the kept data
   * hashed again, so that the download carries on from `offset` as if it had never stopped. Or why
   * not, when the files do not fit the state (then the download starts over).
   */
  static async resume(pending: PendingDownload, state: DownloadState): Promise<DownloadWriter | { reason: string }> {
    const expected = state.entries ?? [];
    const pieces = await prefixPieces(pending, expected);
    const inconsistent = { reason: 'the partial download does not match its saved state' };
    if (!pieces) return inconsistent;
    const size = pieces.reduce((sum, p) => sum + p.length, 0);
    if (size > state.total) return { reason: `the partial download has ${size} bytes, more than the bundle's ${state.total}` };
    // A state without `entries` was saved by a client that kept the whole bundle: it stays whole.
    const writer = new DownloadWriter(
      pending,
      { ...state, entries: state.entries && [...state.entries] },
      state.entries !== undefined,
      expected,
    );
    writer.replaying = true;
    try {
      for (const piece of pieces) if (!(await writer.replay(piece))) return inconsistent;
    } finally {
      writer.replaying = false;
    }
    return writer.kept.length >= expected.length ? writer : inconsistent;
  }

  /** Bundle bytes taken so far. */
  get offset(): number {
    return this.splitter.offset;
  }

  /**
   * Takes the next bytes of the bundle; `chunk` is not kept (it may be reused once this returns, or
   * once the promise it returns settles: a promise only when a file must be waited for).
   */
  write(chunk: Buffer): void | Promise<void> {
    return this.take(this.splitter.write(chunk), 0);
  }

  private take(pieces: ZipStreamPiece[], from: number): void | Promise<void> {
    for (let i = from; i < pieces.length; i++) {
      const piece = pieces[i];
      let wait: void | Promise<void> = undefined;
      if (piece.kind === 'data') {
        const current = this.current!;
        current.kept.hash.update(piece.bytes);
        current.kept.written += piece.bytes.length;
        this.dataTaken += piece.bytes.length;
        if (!this.replaying) wait = current.file.append(piece.bytes);
      } else if (piece.kind === 'meta') {
        // The kept entry's data reaches its file before any later byte reaches the partial bundle.
        if (this.current) wait = this.finishCurrent().then(() => (this.replaying ? undefined : this.meta.append(piece.bytes)));
        else if (!this.replaying) wait = this.meta.append(piece.bytes);
      } else {
        wait = this.begin(piece.entry);
      }
      if (wait) return wait.then(() => this.take(pieces, i + 1));
    }
  }

  /** Everything taken is written (and its files closed). */
  async close(): Promise<void> {
    const current = this.current;
    if (current && current.kept.written === current.kept.entry.compressedSize) await this.finishCurrent();
    else await current?.file.close();
    await this.meta.close();
  }

  /** The bundle as downloaded (after `close`). */
  source(): BundleSource {
    const pieces: FilePiece[] = [];
    const kept: KeptEntry[] = [];
    let at = 0;
    let metaAt = 0;
    for (const k of this.kept) {
      const before = k.entry.dataOffset - at;
      pieces.push({ path: this.pending.partPath, start: metaAt, length: before }, { path: k.path, start: 0, length: k.written });
      metaAt += before;
      at = k.entry.dataOffset + k.written;
      if (k.sha256 !== null) {
        const { name, headerOffset, dataOffset, compressedSize: size, crc32 } = k.entry;
        kept.push({ name, headerOffset, dataOffset, size, crc32, path: k.path, sha256: k.sha256 });
      }
    }
    pieces.push({ path: this.pending.partPath, start: metaAt, length: this.offset - at });
    return piecedSource(pieces, kept);
  }

  /** An entry to keep apart starts: its header on disk first, then its place in the saved state. */
  private async begin(entry: StreamedEntry): Promise<void> {
    if (this.current) await this.finishCurrent();
    const n = this.kept.length;
    const kept: Kept = { entry, path: this.pending.dataPath(n), hash: createHash('sha256'), written: 0, sha256: null };
    this.kept.push(kept);
    this.current = { kept, file: new Appender(kept.path) };
    const layout: KeptData = { offset: entry.dataOffset, size: entry.compressedSize };
    if (this.replaying && n < this.expected.length) {
      // Read back: the entry must be where the saved state says.
      if (this.expected[n].offset !== layout.offset || this.expected[n].size !== layout.size) throw new Mismatch();
      return;
    }
    // (Reading back, an entry past the saved ones: its header was written, then the run stopped before
    // its state was saved; it has no data yet.)
    if (!this.replaying) await this.meta.close();
    if (this.state) {
      this.state.entries!.push(layout);
      await this.pending.save(this.state);
    } else {
      trackTemp(kept.path);
    }
    await this.current.file.create();
  }

  private async finishCurrent(): Promise<void> {
    const { kept, file } = this.current!;
    this.current = null;
    await file.close();
    kept.sha256 = kept.hash.digest('hex');
  }

  /** Reads one piece of what is on disk back through the splitter; false when it does not fit. */
  private async replay(piece: FilePiece & { data: boolean }): Promise<boolean> {
    const handle = await open(piece.path, 'r');
    try {
      const end = piece.start + piece.length;
      for (let at = piece.start; at < end;) {
        // Meta the splitter need not look at (the rest once it cannot follow the entries) is not read.
        const skip = piece.data ? 0 : Math.min(this.splitter.skippable, end - at);
        if (skip > 0) {
          if (this.current) await this.finishCurrent();
          this.splitter.skip(skip);
          at += skip;
          continue;
        }
        const want = Math.min(READ_CHUNK, end - at);
        const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(want), 0, want, at);
        if (bytesRead !== want) return false;
        const before = this.dataTaken;
        await this.write(buffer);
        // Data must come from a kept entry's file and meta from the partial bundle, nothing else.
        if (this.dataTaken - before !== (piece.data ? want : 0)) return false;
        at += want;
      }
      return true;
    } catch (error) {
      if (error instanceof Mismatch) return false;
      throw error;
    } finally {
      await handle.close();
    }
  }
}

class Mismatch extends Error {}

/**
 * The pieces of the partial bundle and the kept entries' files that, end to end, are the bundle's
 * first bytes, as `entries` lays them out; null when the files cannot be that (a kept entry longer
 * than its size, or bytes after one that is not complete).
 */
async function prefixPieces(pending: PendingDownload, entries: KeptData[]): Promise<(FilePiece & { data: boolean })[] | null> {
  const metaSize = await sizeOf(pending.partPath);
  const pieces: (FilePiece & { data: boolean })[] = [];
  let at = 0;
  let metaAt = 0;
  for (const [n, entry] of entries.entries()) {
    const before = entry.offset - at;
    if (before < 0 || metaAt + before > metaSize) return null;
    pieces.push({ path: pending.partPath, start: metaAt, length: before, data: false });
    metaAt += before;
    const path = pending.dataPath(n);
    const have = await sizeOf(path);
    if (have > entry.size) return null;
    pieces.push({ path, start: 0, length: have, data: true });
    at = entry.offset + have;
    if (have < entry.size) {
      if (n !== entries.length - 1 || metaAt !== metaSize) return null;
      break;
    }
  }
  pieces.push({ path: pending.partPath, start: metaAt, length: metaSize - metaAt, data: false });
  return pieces.filter((p) => p.length > 0);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return 0;
    throw error;
  }
}

/**
 * Appends to one file, each byte once, without holding up the download: bytes are copied into a
 * block and written at once when no write is in flight; while one is, they gather in the next block
 * (a few blocks, reused: no allocation per chunk). `append` returns a promise only when every block waits to be written. The file is
 * opened on the first write, or made by `create`; `close` waits until every byte is written.
 */
class Appender {
  private handle: FileHandle | null = null;
  private block: Buffer | null = null;
  private used = 0;
  private readonly free: Buffer[] = [];
  private blocks = 0;
  /** Writes of full blocks, in order; the first is in flight. */
  private readonly queued: Promise<void>[] = [];
  private last: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | null = null;

  constructor(
    private readonly path: string,
    private readonly mode = 0o666,
  ) {}

  /** Makes the file exist, empty, now. */
  async create(): Promise<void> {
    await (await open(this.path, 'w', this.mode)).close();
  }

  append(bytes: Buffer, from = 0): void | Promise<void> {
    for (let at = from; at < bytes.length;) {
      if (this.failure) throw this.failure.error;
      this.block ??= this.free.pop() ?? (this.blocks < WRITE_BLOCKS ? (this.blocks++, Buffer.allocUnsafe(WRITE_BLOCK)) : null);
      if (!this.block) return this.queued[0].then(() => this.append(bytes, at));
      const n = bytes.copy(this.block, this.used, at);
      this.used += n;
      at += n;
      // Written at once when the file is idle (so a stalled or interrupted download loses nothing it
      // received); else gathered until the block is full or the write in flight is done.
      if (this.used === this.block.length || this.queued.length === 0) this.submit();
    }
  }

  async close(): Promise<void> {
    if (this.used > 0) this.submit();
    await this.last;
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
    if (this.failure) throw this.failure.error;
  }

  private submit(): void {
    const block = this.block!;
    const length = this.used;
    this.block = null;
    this.used = 0;
    const write = this.last.then(async () => {
      try {
        if (this.failure) return;
        this.handle ??= await open(this.path, 'a', this.mode);
        for (let done = 0; done < length;) {
          const { bytesWritten } = await this.handle.write(block, done, length - done);
          if (bytesWritten === 0) throw new Error('the file system accepts no more bytes');
          done += bytesWritten;
        }
      } catch (error) {
        this.failure ??= { error };
      } finally {
        void this.queued.shift();
        this.free.push(block);
      }
      if (this.queued.length === 0 && this.used > 0) this.submit();
    });
    this.queued.push(write);
    this.last = write;
  }
}
