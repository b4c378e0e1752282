import { win32 } from 'node:path';

export const MAX_NAME_BYTES = 255;
export const FALLBACK_NAME = 'content';

// C0 and C1 controls, DEL, and the bidirectional overrides/isolates that disguise extensions.
// eslint-disable-next-line no-control-regex -- matching control characters is this expression's purpose
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/gu;

/** The longest prefix of `text` that fits in `maxBytes` UTF-8 bytes without splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  let bytes = 0;
  let out = '';
  for (const char of text) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > maxBytes) break;
    bytes += size;
    out += char;
  }
  return out;
}

/**
 * A safe display/save name from an uploaded file name: the last path segment (either separator),
 * NFC, without control or bidi-override characters, trimmed, at most 255 UTF-8 bytes (the
 * extension is kept when it is short), never empty, "." or "..".
 */
export function sanitizeFileName(original: string | undefined): string {
  let name = win32.basename((original ?? '').replaceAll('/', '\\'));
  name = name.normalize('NFC').replace(UNSAFE, '').trim();
  if (name === '' || name === '.' || name === '..') return FALLBACK_NAME;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    const dot = name.lastIndexOf('.');
    const extension = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
    const stem = extension === '' ? name : name.slice(0, dot);
    name = truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(extension, 'utf8')).trimEnd() + extension;
  }
  return name === '' ? FALLBACK_NAME : name;
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;

/** The upload's media type (type/subtype, lower case, parameters dropped), or application/octet-stream. */
export function normalizeMediaType(mimetype: string | undefined): string {
  const essence = (mimetype ?? '').split(';')[0].trim().toLowerCase();
  return MEDIA_TYPE.test(essence) ? essence : 'application/octet-stream';
}
