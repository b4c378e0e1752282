import { spawn } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createTestDatabase } from '../../test/support/database.js';
import { freePort } from '../../test/support/ports.js';
import { Cleanup } from './proc.js';

/** The compiled baseline app (bench/baselines/plain-nest.ts), beside this file under dist/bench. */
const APP = join(import.meta.dirname, '..', 'baselines', 'plain-nest.js');

/**
 * Starts the plain NestJS baseline on its own fresh database and a free port, serving copies of `files`;
 * returns the URL of each file by name. Stopped (and its database dropped) by `cleanup`.
 */
export async function startPlainNest(workDir: string, files: string[], cleanup: Cleanup): Promise<{ urlOf: (file: string) => string }> {
  const filesDir = join(workDir, 'plain-nest');
  await mkdir(filesDir, { recursive: true });
  for (const file of files) await copyFile(file, join(filesDir, basename(file)));
  const database = await createTestDatabase();
  cleanup.add('plain-nest database', () => database.drop());
  const port = await freePort();
  const child = spawn(process.execPath, [APP], {
    env: { PATH: process.env.PATH, PORT: String(port), DATABASE_URL: database.url, FILES_DIR: filesDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  cleanup.add('plain-nest', async () => {
    child.kill('SIGTERM');
    await exited;
  });
  const deadline = Date.now() + 30_000;
  while (!output.includes('plain-nest listening')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the plain NestJS baseline did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { urlOf: (file) => `http://127.0.0.1:${port}/files/${encodeURIComponent(basename(file))}` };
}
