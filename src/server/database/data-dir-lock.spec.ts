import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLock } from './data-dir-lock.js';

describe('DataDirLock', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-lock-'));
    path = join(dir, 'pgdata.lock');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('takes the lock with our pid and releases it', async () => {
    const lock = new DataDirLock(path, dir);
    lock.acquire();
    expect(lock.isHeld).toBe(true);
    expect((await readFile(path, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    lock.release();
    expect(existsSync(path)).toBe(false);
  });

  test('a second holder in the same process is refused, naming DATA_DIR', () => {
    const first = new DataDirLock(path, dir);
    first.acquire();
    try {
      expect(() => new DataDirLock(path, dir).acquire()).toThrow(`another DCX server is using DATA_DIR ${dir}`);
    } finally {
      first.release();
    }
  });

  test('a lock held by a live process is refused and left alone', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      await writeFile(path, `${child.pid} otherhost 2026-01-01T00:00:00Z\n`);
      expect(() => new DataDirLock(path, dir).acquire()).toThrow(new RegExp(`another DCX server is using DATA_DIR .* \\(pid ${child.pid}`));
      expect(await readFile(path, 'utf8')).toContain(String(child.pid));
    } finally {
      child.kill();
    }
  });

  test('a stale lock of a dead process is taken over', async () => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((done) => child.once('exit', done));
    await writeFile(path, `${child.pid} host 2026-01-01T00:00:00Z\n`);
    const lock = new DataDirLock(path, dir);
    lock.acquire();
    expect((await readFile(path, 'utf8')).split(' ')[0]).toBe(String(process.pid));
    lock.release();
  });

  test('our own pid left by an earlier life (PID 1 in a container) and garbage are stale', async () => {
    await writeFile(path, `${process.pid} host 2026-01-01T00:00:00Z\n`);
    const lock = new DataDirLock(path, dir);
    lock.acquire();
    lock.release();
    await writeFile(path, 'garbage');
    lock.acquire();
    lock.release();
  });

  test('release leaves a lock that is no longer ours', async () => {
    const lock = new DataDirLock(path, dir);
    lock.acquire();
    await writeFile(path, '1 someone-else\n');
    lock.release();
    expect(existsSync(path)).toBe(true);
  });
});
