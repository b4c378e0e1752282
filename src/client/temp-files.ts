import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Temp files that exist right now; removed on Ctrl-C so an interrupted run leaves nothing behind. */
const live = new Set<string>();

/** A fresh, hidden temp file name in `dir`. */
export function tempPathIn(dir: string, suffix = '.part'): string {
  return join(dir, `.dcx-${randomBytes(8).toString('hex')}${suffix}`);
}

export function trackTemp(path: string): void {
  live.add(path);
}

export function untrackTemp(path: string): void {
  live.delete(path);
}

/** Removes a temp file (if it is still there) and forgets it. */
export async function discardTemp(path: string): Promise<void> {
  live.delete(path);
  await rm(path, { force: true });
}

/** For signal handlers: synchronous, never throws. */
export function removeAllTempsSync(): void {
  for (const path of live) {
    try {
      rmSync(path, { force: true });
    } catch {
      // nothing more can be done while exiting
    }
  }
  live.clear();
}
