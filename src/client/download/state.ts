import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DcxError, errnoCode, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { readTextIfPresent, writePrivateFileAtomic } from '../home.js';
import { trackTemp, untrackTemp } from '../temp-files.js';

/**
 * What a resumable bundle download needs to carry on where it stopped: the delivery's own URL
 * (its Content-Location, made absolute) and the validator and size its bundle had.
 */
export interface DownloadState {
  /** The URL `dcx fetch` was given (the key of this state). */
  url: string;
  /** Absolute URL of the delivery's bundle: the same bytes again, by Range. */
  deliveryUrl: string;
  /** Strong ETag of the bundle, sent back as If-Range. */
  etag: string;
  /** Exact size of the bundle in bytes. */
  total: number;
  deliveryId: string;
  /**
   * The entries whose data is kept in files of their own (`<key>.<n>.data`, n = 0, 1, … in this
   * order), by bundle offset of their first data byte and size; the partial bundle holds every other
   * byte. Absent in a state saved by a client that kept the whole bundle in the partial file.
   */
  entries?: KeptData[];
}

export interface KeptData {
  offset: number;
  size: number;
}

/**
 * The unfinished download of one URL under DCX_HOME/downloads: `<key>.part` (the bundle but for the
 * data of the entries kept apart), `<key>.<n>.data` (those), `<key>.json` (its state), `<key>.lock`.
 */
export class PendingDownload {
  readonly partPath: string;
  readonly statePath: string;
  readonly lockPath: string;
  private readonly key: string;
  private hasState = false;

  constructor(
    private readonly downloadsDir: string,
    readonly url: string,
  ) {
    this.key = downloadKey(url);
    this.partPath = join(downloadsDir, `${this.key}.part`);
    this.statePath = join(downloadsDir, `${this.key}.json`);
    this.lockPath = join(downloadsDir, `${this.key}.lock`);
  }

  /** The file of the `n`-th entry kept apart. */
  dataPath(n: number): string {
    return join(this.downloadsDir, `${this.key}.${n}.data`);
  }

  /** The saved state, or null when there is none or it is unusable (then it is forgotten). */
  async load(): Promise<DownloadState | null> {
    const text = await readTextIfPresent(this.statePath, 'the download state');
    if (text === null) return null;
    const state = parseState(text);
    if (!state || state.url !== this.url) {
      await this.discard();
      return null;
    }
    this.markResumable(true);
    return state;
  }

  async save(state: DownloadState): Promise<void> {
    await writePrivateFileAtomic(this.statePath, JSON.stringify({ version: 1, ...state }) + '\n');
    untrackTemp(this.partPath);
    this.markResumable(true);
  }

  /** Whether a state is saved, so that the partial download can be resumed (and is kept on failure). */
  get resumable(): boolean {
    return this.hasState;
  }

  /** Forgets the download: the partial bundle, the entries kept apart and the state. */
  async discard(): Promise<void> {
    this.markResumable(false);
    const data = (await readdir(this.downloadsDir).catch(() => [] as string[]))
      .filter((name) => name.startsWith(`${this.key}.`) && name.endsWith('.data'))
      .map((name) => join(this.downloadsDir, name));
    const paths = [this.partPath, this.statePath, ...data];
    paths.forEach(untrackTemp);
    await Promise.all(paths.map((path) => rm(path, { force: true })));
  }

  /** The command is over: Ctrl-C no longer concerns this download. */
  forget(): void {
    if (resumable.active === this) resumable.active = null;
  }

  private markResumable(on: boolean): void {
    this.hasState = on;
    if (on) resumable.active = this;
    else if (resumable.active === this) resumable.active = null;
  }

  /**
   * One `dcx fetch` per URL and home at a time: two would write the same partial file. A lock left
   * by a process that is gone (kill -9, power cut) is taken over. Returns the release function.
   */
  async lock(): Promise<() => Promise<void>> {
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(this.lockPath, 'wx', 0o600);
        try {
          await handle.writeFile(`${process.pid}\n`);
        } finally {
          await handle.close();
        }
        // Ctrl-C removes the lock with the other temp files; the partial download stays.
        trackTemp(this.lockPath);
        return async () => {
          untrackTemp(this.lockPath);
          await rm(this.lockPath, { force: true });
        };
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw new DcxError(ExitCode.Failure, `cannot lock ${this.lockPath}: ${messageOf(error)}`);
        const pid = Number.parseInt(await readFile(this.lockPath, 'utf8').catch(() => ''), 10);
        if (attempt > 0 || (Number.isInteger(pid) && pid > 0 && isRunning(pid))) {
          throw new DcxError(
            ExitCode.Failure,
            `another dcx fetch of ${this.url} is running${Number.isInteger(pid) ? ` (pid ${pid})` : ''}; wait for it to ` +
              `finish, or remove ${this.lockPath} if it is not running`,
          );
        }
        await rm(this.lockPath, { force: true });
      }
    }
  }
}

/** sha256 of the URL: a fixed-length file name that reveals nothing of the URL (it may hold an access token). */
export function downloadKey(url: string): string {
  return createHash('sha256').update(url).digest('hex');
}

function parseState(text: string): DownloadState | null {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const { url, deliveryUrl, etag, total, deliveryId, entries } = value;
    if (value.version !== 1) return null;
    if (typeof url !== 'string' || typeof deliveryUrl !== 'string' || typeof etag !== 'string' || typeof deliveryId !== 'string')
      return null;
    if (!isSize(total)) return null;
    new URL(deliveryUrl);
    if (entries === undefined) return { url, deliveryUrl, etag, total, deliveryId };
    if (!Array.isArray(entries)) return null;
    const kept: KeptData[] = [];
    for (const entry of entries as unknown[]) {
      const { offset, size } = (entry ?? {}) as Record<string, unknown>;
      if (!isSize(offset) || !isSize(size)) return null;
      kept.push({ offset, size });
    }
    return { url, deliveryUrl, etag, total, deliveryId, entries: kept };
  } catch {
    return null;
  }
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/** The resumable download under way, if any: Ctrl-C leaves it for the next run, and says so. */
const resumable: { active: PendingDownload | null } = { active: null };

export function resumableDownload(): PendingDownload | null {
  return resumable.active;
}
