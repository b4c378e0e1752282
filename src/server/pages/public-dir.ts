import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The package's `public/` directory (pages, scripts, styles), found by walking up from this file:
 * it sits at the package root both for `src/` (tests) and for `dist/src/` (the built server).
 */
export function findPublicDir(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'public');
    if (existsSync(join(dir, 'package.json')) && existsSync(join(candidate, 'index.html'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`no public/ directory with index.html above ${from}`);
  }
}
