import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/** Lock files this process holds, so that our own pid in a lock file is not mistaken for a stale one. */
const heldByThisProcess = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readPid(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').split(/\s+/)[0] ?? '', 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * An exclusive lock on a data directory: a file created with O_EXCL holding our pid.
 * A lock left by a dead process (or by an earlier run that had our pid, as PID 1 in a container)
 * is taken over; a live one is refused with a message naming the directory.
 */
export class DataDirLock {
  private held = false;
  private readonly releaseOnExit = () => this.release();

  constructor(
    readonly path: string,
    private readonly dataDir: string = dirname(path),
  ) {}

  acquire(): void {
    if (this.held) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const fd = openSync(this.path, 'wx', 0o600);
        try {
          writeSync(fd, `${process.pid} ${hostname()} ${new Date().toISOString()}\n`);
        } finally {
          closeSync(fd);
        }
        this.held = true;
        heldByThisProcess.add(this.path);
        process.once('exit', this.releaseOnExit);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const pid = readPid(this.path);
      const ours = pid === process.pid && heldByThisProcess.has(this.path);
      if (pid !== undefined && (ours || (pid !== process.pid && isAlive(pid)))) {
        throw new Error(
          `another DCX server is using DATA_DIR ${this.dataDir} (pid ${pid}, lock file ${this.path}); ` +
            'stop it, or use another DATA_DIR',
        );
      }
      // Stale (dead pid, unreadable, or our pid from an earlier life): take it over.
      try {
        unlinkSync(this.path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw new Error(`could not take the lock file ${this.path}`);
  }

  /** Removes the lock file if it is still ours. Synchronous so that it also runs on process exit. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    heldByThisProcess.delete(this.path);
    process.removeListener('exit', this.releaseOnExit);
    try {
      if (readPid(this.path) === process.pid) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  get isHeld(): boolean {
    return this.held;
  }
}
