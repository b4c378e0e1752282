import { link, lstat, rename, unlink } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { DcxError, errnoCode } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** What a file is saved as when nothing usable is left of its name. */
export const FALLBACK_NAME = 'content';

const MAX_NAME_BYTES = 255;
// C0 controls, DEL and C1 controls.
const CONTROL_CHARS = /\p{Cc}/gu;
// Characters Windows refuses in a file name (the separators are handled before).
const RESERVED_CHARS = /[<>:"|?*]/g;
// Windows device names, with or without an extension: `CON`, `nul.txt`, `COM1.tar.gz`.
const RESERVED_NAMES = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;

/**
 * Turns a name taken from a bundle into a plain file name: the last path segment only, no control or
 * Windows-reserved characters, no device names, no trailing dots or spaces, at most 255 UTF-8 bytes;
 * `content` when nothing is left. The result never contains a separator and is never `.` or `..`.
 */
export function sanitizeFileName(name: string): string {
  const segments = name.split(/[/\\]+/).filter((s) => s.length > 0);
  let base = (segments.at(-1) ?? '').normalize('NFC');
  base = base.replace(CONTROL_CHARS, '').replace(RESERVED_CHARS, '_');
  // Windows drops trailing dots and spaces; leading spaces only confuse.
  base = base.replace(/[. ]+$/, '').replace(/^ +/, '');
  if (base === '' || base === '.' || base === '..') return FALLBACK_NAME;
  if (RESERVED_NAMES.test(base)) base = `_${base}`;
  return truncateName(base);
}

/** Shortens the stem (never the extension, unless it alone is too long) to fit 255 UTF-8 bytes. */
function fitName(stem: string, suffix = '', ext = ''): string {
  if (Buffer.byteLength(ext) > 32) {
    stem += ext;
    ext = '';
  }
  let chars = [...stem];
  while (chars.length > 1 && Buffer.byteLength(chars.join('') + suffix + ext) > MAX_NAME_BYTES) chars = chars.slice(0, -1);
  return chars.join('') + suffix + ext;
}

function truncateName(name: string): string {
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name;
  const ext = extname(name);
  return fitName(name.slice(0, name.length - ext.length), '', ext);
}

/**
 * True when a ZIP entry name tries to leave the directory it is extracted to or hide something:
 * separators (either kind), `.`/`..`, a drive prefix, control characters, or an empty name.
 */
export function hasPathTricks(entryName: string): boolean {
  if (entryName.length === 0 || entryName === '.' || entryName === '..') return true;
  if (entryName.includes('/') || entryName.includes('\\')) return true;
  if (/^[a-zA-Z]:/.test(entryName)) return true;
  // C0 controls and DEL (C1 controls are left to sanitizeFileName).
  return /(?![\u0080-\u009f])\p{Cc}/u.test(entryName);
}

/**
 * The absolute path of `name` inside `dir`, or an error when it would land anywhere else
 * (the containment check of tus-node-server's `path.ts`).
 */
export function resolveInside(dir: string, name: string): string {
  const root = resolve(dir);
  const target = resolve(root, name);
  if (!target.startsWith(root + sep)) {
    throw new DcxError(ExitCode.UnusableBundle, `refusing to write ${JSON.stringify(name)} outside ${root}`);
  }
  return target;
}

/** `name`, then `name (1).ext`, `name (2).ext`, … (still at most 255 bytes). */
export function candidateName(name: string, attempt: number): string {
  if (attempt === 0) return name;
  const ext = extname(name);
  return fitName(ext ? name.slice(0, -ext.length) : name, ` (${attempt})`, ext);
}

const MAX_ATTEMPTS = 10_000;

/** errno codes of a file system that has no hard links. */
export const NO_LINK_CODES: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Hard-links `source` to the first free name among `name`, `name (1).ext`, … in `dir`, never replacing
 * an existing file (the link fails atomically when the name is taken). Returns the new path; the
 * link's errors other than a taken name (another file system, no hard links) are thrown as they are.
 * `name` must already be sanitised.
 */
export async function linkToFreeName(source: string, dir: string, name: string): Promise<string> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const target = resolveInside(dir, candidateName(name, attempt));
    try {
      await link(source, target);
      return target;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
  throw noFreeName(dir, name);
}

/**
 * Moves a finished temp file (in `dir`) to the first free name among `name`, `name (1).ext`, …,
 * never replacing an existing file. Returns the final path. `name` must already be sanitised.
 */
export async function moveToFreeName(tempPath: string, dir: string, name: string): Promise<string> {
  try {
    const target = await linkToFreeName(tempPath, dir, name);
    await unlink(tempPath);
    return target;
  } catch (error) {
    if (!NO_LINK_CODES.has(errnoCode(error) ?? '')) throw error;
  }
  // No hard links on this file system: check, then rename (a narrow race, but no silent loss in practice).
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const target = resolveInside(dir, candidateName(name, attempt));
    if (await exists(target)) continue;
    await rename(tempPath, target);
    return target;
  }
  throw noFreeName(dir, name);
}

function noFreeName(dir: string, name: string): DcxError {
  return new DcxError(ExitCode.Failure, `no free file name for ${JSON.stringify(name)} in ${resolve(dir)}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}
