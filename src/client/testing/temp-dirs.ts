// Temp directories and digests for the client specs.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

const madeDirs: string[] = [];

/** A fresh temp directory; a spec removes them with `afterAll(removeTempDirs)`. */
export async function tempDir(prefix = 'dcx-client-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(madeDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
