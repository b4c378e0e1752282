import { createHash } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, stat } from 'node:fs/promises';
import { Readable, Transform, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import unzipper from 'unzipper';
import { MAX_FILES, MAX_PLUGIN_DATA_SIZE, PLUGIN_ENTRY_NAME } from '../protocol/constants.js';
import { ContentFileInfo } from '../protocol/file-list.js';
import { LOCAL_HEADER_SIGNATURE, LOCAL_HEADER_SIZE, localHeaderLength, METHOD_STORE } from '../protocol/zip-format.js';
import { BundleSource, fileSource, KeptEntry, readRange } from './download/bundle-source.js';
import { DcxError, errnoCode, messageOf, unusableBundle } from './errors.js';
import { ExitCode } from './exit-codes.js';
import {
  candidateName,
  hasPathTricks,
  linkToFreeName,
  moveToFreeName,
  NO_LINK_CODES,
  resolveInside,
  sanitizeFileName,
} from './safe-path.js';
import { discardTemp, tempPathIn, trackTemp, untrackTemp } from './temp-files.js';

export interface BundleEntry {
  name: string;
  compressedSize: number;
  uncompressedSize: number;
  file: unzipper.File;
}

/** A content entry paired with what the plug-in data says about it. */
export interface ContentPart {
  info: ContentFileInfo;
  entry: BundleEntry;
}

export interface SavedFile {
  path: string;
  size: number;
  sha256: string;
  /**
   * True when the file was already in DIR (same name, size and SHA-256: a re-run or a re-delivery) and
   * nothing was written. Such a file was not made by this save, so a failure must not remove it.
   */
  alreadySaved?: true;
}

const WRITE_CHUNK = 1024 * 1024;

/** How an HTML document starts (after white space and a byte order mark): a portal page saved instead of its bundle. */
const HTML_START = /^(\ufeff)?\s*<(!doctype html|html|head|body|!--)/i;

/** Whether the first bytes are an HTML page (issue 21: it was "not a readable ZIP file"). */
async function looksLikeHtml(source: BundleSource): Promise<boolean> {
  try {
    const size = await source.size();
    return size > 0 && HTML_START.test((await readRange(source, 0, Math.min(size, 512))).toString('utf8'));
  } catch {
    return false;
  }
}

/**
 * A `.dcx` bundle, read through the ZIP central directory (unzipper's streaming parser truncates
 * entries written with data descriptors). Opening checks the structure only: every entry name is a
 * plain file name, the first entry is the plug-in data (at most 64 KiB), no name appears twice, and
 * the entries a download kept apart are the ones the central directory describes.
 */
export class Bundle {
  private constructor(
    private readonly source: BundleSource,
    /** How messages name the bundle: its path, or the URL it was downloaded from. */
    readonly label: string,
    readonly pluginRecord: Buffer,
    readonly contentEntries: BundleEntry[],
  ) {}

  /** `input`: a bundle file's path, or the bytes of a download. */
  static async open(input: string | BundleSource, label = typeof input === 'string' ? input : 'the bundle'): Promise<Bundle> {
    const source = typeof input === 'string' ? fileSource(input) : input;
    let directory: unzipper.CentralDirectory;
    try {
      // unzipper asks for `length` bytes from `offset` as fs.createReadStream's inclusive `end` would.
      directory = await unzipper.Open.custom({
        size: () => source.size(),
        stream: (offset, length) => source.stream(offset, length ? offset + length : undefined),
      });
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') throw new DcxError(ExitCode.Usage, `no such file: ${label}`);
      if (code === 'EISDIR') throw new DcxError(ExitCode.Usage, `${label} is a directory, not a bundle`);
      if (code === 'EACCES') throw new DcxError(ExitCode.Failure, `cannot read ${label}: permission denied`);
      // unzipper's FILE_ENDED: no end-of-central-directory record, i.e. not a ZIP (or cut short).
      if (await looksLikeHtml(source)) {
        throw unusableBundle(
          `${label} is a web page (HTML), not a DCX bundle: use the bundle link itself (…/bundle), not the page that shows it`,
          error,
        );
      }
      const why = messageOf(error) === 'FILE_ENDED' ? 'no ZIP central directory; not a ZIP, or cut short' : messageOf(error);
      throw unusableBundle(`${label} is not a DCX bundle: not a readable ZIP file (${why})`, error);
    }
    const files = directory.files;
    if (files.length === 0) throw unusableBundle(`${label} is not a DCX bundle: the ZIP file is empty`);
    if (files.length > MAX_FILES + 1) throw unusableBundle(`${label} has ${files.length} entries, more than a bundle may hold`);

    const seen = new Set<string>();
    for (const file of files) {
      if (hasPathTricks(file.path)) {
        throw unusableBundle(`${label} is refused: entry name ${JSON.stringify(file.path)} is not a plain file name`);
      }
      if (seen.has(file.path)) throw unusableBundle(`${label} is refused: entry ${JSON.stringify(file.path)} appears twice`);
      seen.add(file.path);
    }

    const first = files[0];
    const firstOffset = Math.min(...files.map((f) => f.offsetToLocalFileHeader));
    if (first.path !== PLUGIN_ENTRY_NAME || first.offsetToLocalFileHeader !== firstOffset) {
      throw unusableBundle(`${label} is not a DCX bundle: its first entry is not the plug-in data (${PLUGIN_ENTRY_NAME})`);
    }
    if (first.uncompressedSize > MAX_PLUGIN_DATA_SIZE || first.compressedSize > MAX_PLUGIN_DATA_SIZE) {
      throw unusableBundle(`${label} is refused: its plug-in data entry is larger than ${MAX_PLUGIN_DATA_SIZE} bytes`);
    }
    checkKeptEntries(files, source.kept, label);
    const record = await readCapped(first, MAX_PLUGIN_DATA_SIZE, label);

    const contentEntries = files.slice(1).map((file) => ({
      name: file.path,
      compressedSize: file.compressedSize,
      uncompressedSize: file.uncompressedSize,
      file,
    }));
    return new Bundle(source, label, record, contentEntries);
  }

  /**
   * Pairs each file the plug-in data lists with its entry, in the plug-in data's order. Any entry the
   * plug-in data does not list, or a listed file without an entry, makes the bundle unusable.
   */
  match(files: ContentFileInfo[]): ContentPart[] {
    const byName = new Map(this.contentEntries.map((e) => [e.name, e]));
    const listed = new Set<string>();
    const parts: ContentPart[] = [];
    for (const info of files) {
      if (listed.has(info.name)) throw unusableBundle(`the plug-in data lists ${JSON.stringify(info.name)} twice`);
      listed.add(info.name);
      const entry = byName.get(info.name);
      if (!entry) throw unusableBundle(`${this.label} is missing ${JSON.stringify(info.name)}, which its plug-in data lists`);
      parts.push({ info, entry });
    }
    for (const entry of this.contentEntries) {
      if (!listed.has(entry.name))
        throw unusableBundle(`${this.label} holds ${JSON.stringify(entry.name)}, which its plug-in data does not list`);
    }
    return parts;
  }

  /**
   * A stored entry is read straight from the file in 1 MiB chunks (unzipper's entry stream moves
   * small chunks through several streams and is several times slower); other methods go through unzipper.
   */
  private async entryStream(entry: BundleEntry): Promise<Readable> {
    const file = entry.file;
    if (file.compressionMethod !== METHOD_STORE || entry.compressedSize !== entry.uncompressedSize) return entry.file.stream();
    const header = await readRange(this.source, file.offsetToLocalFileHeader, LOCAL_HEADER_SIZE);
    if (header.length < LOCAL_HEADER_SIZE || header.readUInt32LE(0) !== LOCAL_HEADER_SIGNATURE) {
      throw unusableBundle(`${this.label} is damaged: no local header for ${JSON.stringify(entry.name)}`);
    }
    const start = file.offsetToLocalFileHeader + localHeaderLength(header);
    if (entry.uncompressedSize === 0) return Readable.from([]);
    return this.source.stream(start, start + entry.uncompressedSize - 1);
  }

  /**
   * Saves one content entry in `dir` under a free, sanitised name (never replacing a file), once its
   * size and SHA-256 match the plug-in data. An entry a download kept apart was hashed as it arrived:
   * its file is checked, then linked (or copied) into `dir`. Any other entry is streamed to a temp
   * file in `dir` while hashing it. On a mismatch a digest-mismatch error is thrown and nothing
   * partial is left in `dir`. A file already there under that name (or `name (n)`) with the plug-in
   * data's size and SHA-256 is that content saved before: it is returned as `alreadySaved`, nothing written.
   */
  async extract(part: ContentPart, dir: string, onBytes?: (n: number) => void): Promise<SavedFile> {
    await mkdir(dir, { recursive: true });
    const existing = await findSavedCopy(dir, sanitizeFileName(part.info.name), part.info.size, part.info.sha256);
    if (existing) {
      onBytes?.(part.info.size);
      return { path: existing, size: part.info.size, sha256: part.info.sha256, alreadySaved: true };
    }
    const kept = this.source.kept.find((k) => k.headerOffset === part.entry.file.offsetToLocalFileHeader);
    if (kept) {
      if (kept.size !== part.info.size || kept.sha256 !== part.info.sha256) throw digestMismatch(part.info, kept.size, kept.sha256);
      const saved = await saveKept(kept, dir, sanitizeFileName(part.info.name));
      onBytes?.(kept.size);
      return saved;
    }
    const temp = tempPathIn(dir);
    trackTemp(temp);
    const meter = new DigestMeter(part.info.name, part.info.size, onBytes);
    try {
      const source = await this.entryStream(part.entry);
      let readFailed = false;
      source.once('error', () => (readFailed = true));
      const sink = createWriteStream(temp, { flags: 'wx', highWaterMark: WRITE_CHUNK });
      try {
        await pipeline(source, meter, sink);
      } catch (error) {
        if (error instanceof DcxError) throw error;
        if (readFailed)
          throw unusableBundle(`cannot read ${JSON.stringify(part.info.name)} from ${this.label}: ${messageOf(error)}`, error);
        // A local failure (disk full, permissions), not the bundle's fault.
        throw savingFailed(part.info.name, dir, error);
      }
      const sha256 = meter.digest();
      if (meter.bytes !== part.info.size || sha256 !== part.info.sha256) {
        throw digestMismatch(part.info, meter.bytes, sha256);
      }
      const path = await moveToFreeName(temp, dir, sanitizeFileName(part.info.name));
      untrackTemp(temp);
      return { path, size: meter.bytes, sha256 };
    } finally {
      await discardTemp(temp);
    }
  }
}

/** More names than this in a row taken by other files: stop looking for an earlier copy (the save goes on). */
const MAX_COPIES_CHECKED = 100;

/**
 * The path of a regular file in `dir` under `name`, `name (1).ext`, … (up to the first free name, as
 * the save would choose) whose size and SHA-256 are the expected ones, or null. This is what makes a
 * re-run of the same delivery, or the same content delivered again, confirm the file already saved
 * instead of writing `name (1).ext`. Only files of the right size are hashed.
 */
export async function findSavedCopy(dir: string, name: string, size: number, sha256: string): Promise<string | null> {
  for (let attempt = 0; attempt < MAX_COPIES_CHECKED; attempt++) {
    const path = resolveInside(dir, candidateName(name, attempt));
    let info;
    try {
      info = await lstat(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return null;
      throw savingFailed(name, dir, error);
    }
    // A symbolic link is never taken for a saved copy: it may point anywhere.
    if (!info.isFile() || info.size !== size) continue;
    if ((await fileSha256(path).catch(() => null)) === sha256) return path;
  }
  return null;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: WRITE_CHUNK }), hash);
  return hash.digest('hex');
}

/**
 * Puts a kept entry's file into `dir` without writing its bytes again: a hard link (its copy under
 * DCX_HOME stays until the delivery is confirmed, so that a failed confirmation can be retried).
 * Copied instead, to a temp file then renamed, when `dir` is on another file system, hard links are
 * not supported, or the file is already linked elsewhere (two saved files must not share one inode).
 */
async function saveKept(kept: KeptEntry, dir: string, name: string): Promise<SavedFile> {
  const saved = (path: string): SavedFile => ({ path, size: kept.size, sha256: kept.sha256 });
  try {
    if ((await stat(kept.path)).nlink === 1) return saved(await linkToFreeName(kept.path, dir, name));
  } catch (error) {
    if (error instanceof DcxError) throw error;
    const code = errnoCode(error);
    if (code !== 'EXDEV' && !NO_LINK_CODES.has(code ?? '')) throw savingFailed(name, dir, error);
  }
  const temp = tempPathIn(dir);
  trackTemp(temp);
  try {
    await copyFile(kept.path, temp, constants.COPYFILE_EXCL);
    const path = await moveToFreeName(temp, dir, name);
    untrackTemp(temp);
    return saved(path);
  } catch (error) {
    if (error instanceof DcxError) throw error;
    throw savingFailed(name, dir, error);
  } finally {
    await discardTemp(temp);
  }
}

function savingFailed(name: string, dir: string, error: unknown): DcxError {
  return new DcxError(ExitCode.Failure, `cannot save ${JSON.stringify(name)} in ${dir}: ${messageOf(error)}`, { cause: error });
}

/**
 * The entries a download kept apart must be the central directory's, as their local headers said:
 * same offset, name, size, CRC-32, stored. Otherwise the archive says two things at once.
 */
function checkKeptEntries(files: unzipper.File[], kept: readonly KeptEntry[], label: string): void {
  for (const entry of kept) {
    const file = files.find((f) => f.offsetToLocalFileHeader === entry.headerOffset);
    if (!file) throw unusableBundle(`${label} is damaged: its entry ${JSON.stringify(entry.name)} is not in its central directory`);
    const same =
      file.path === entry.name &&
      file.compressionMethod === METHOD_STORE &&
      file.compressedSize === entry.size &&
      file.uncompressedSize === entry.size &&
      file.crc32 >>> 0 === entry.crc32 >>> 0;
    if (!same)
      throw unusableBundle(
        `${label} is damaged: its central directory does not describe ${JSON.stringify(file.path)} as its local header does`,
      );
  }
}

function digestMismatch(info: ContentFileInfo, size: number, sha256: string): DcxError {
  const what =
    size !== info.size
      ? `${size} bytes arrived, the plug-in data says ${info.size}`
      : `SHA-256 ${sha256} differs from the plug-in data's ${info.sha256}`;
  return new DcxError(ExitCode.DigestMismatch, `${JSON.stringify(info.name)} is not what the server sent (${what}); the file was removed`);
}

/** Counts and hashes what passes through; fails as soon as more bytes than expected arrive. */
class DigestMeter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly name: string,
    private readonly expected: number,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: WRITE_CHUNK });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.expected) {
      callback(
        new DcxError(
          ExitCode.DigestMismatch,
          `${JSON.stringify(this.name)} is not what the server sent (larger than the ${this.expected} bytes the plug-in data ` +
            `says); the file was removed`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    this.onBytes?.(chunk.length);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

async function readCapped(file: unzipper.File, cap: number, bundlePath: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of file.stream() as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > cap) throw unusableBundle(`${bundlePath} is refused: its plug-in data entry is larger than ${cap} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof DcxError) throw error;
    throw unusableBundle(`cannot read the plug-in data of ${bundlePath}: ${messageOf(error)}`, error);
  }
  return Buffer.concat(chunks);
}
