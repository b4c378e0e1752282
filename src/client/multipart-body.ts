import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

/** Read size when streaming an upload from disk: large reads keep a multi-GiB upload cheap. */
const UPLOAD_CHUNK_SIZE = 1024 * 1024;
const CRLF = '\r\n';

export interface MultipartFile {
  field: string;
  path: string;
  /** File name sent in Content-Disposition. */
  name: string;
  size: number;
  /** Told the size of each chunk of the file as it is read into the request (an upload's progress bar). */
  onRead?: (bytes: number) => void;
}

export interface MultipartBody {
  body: Readable;
  contentType: string;
  contentLength: number;
}

/**
 * A multipart/form-data body (RFC 7578) with text fields then one file streamed from disk, and its exact
 * length. Node 20's `fs.openAsBlob` reports the size of a file of 4 GiB or more modulo 2^32, so a FormData
 * built from it announces a wrong length and the upload stalls; this streams the same body with the right one.
 */
export function multipartFileBody(fields: Record<string, string>, file: MultipartFile): MultipartBody {
  const boundary = `----dcx-${randomBytes(16).toString('hex')}`;
  const head =
    Object.entries(fields)
      .map(
        ([name, value]) => `--${boundary}${CRLF}Content-Disposition: form-data; name="${escapeQuoted(name)}"${CRLF}${CRLF}${value}${CRLF}`,
      )
      .join('') +
    `--${boundary}${CRLF}Content-Disposition: form-data; name="${escapeQuoted(file.field)}"; filename="${escapeQuoted(file.name)}"${CRLF}` +
    `Content-Type: application/octet-stream${CRLF}${CRLF}`;
  const tail = `${CRLF}--${boundary}--${CRLF}`;
  const [headBytes, tailBytes] = [Buffer.from(head, 'utf8'), Buffer.from(tail, 'utf8')];

  async function* parts(): AsyncGenerator<Buffer> {
    yield headBytes;
    // `end` is inclusive: exactly the announced size is sent even if the file grows meanwhile.
    if (file.size > 0) {
      for await (const chunk of createReadStream(file.path, {
        highWaterMark: UPLOAD_CHUNK_SIZE,
        end: file.size - 1,
      }) as AsyncIterable<Buffer>) {
        yield chunk;
        file.onRead?.(chunk.length);
      }
    }
    yield tailBytes;
  }
  return {
    body: Readable.from(parts(), { objectMode: false }),
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength: headBytes.length + file.size + tailBytes.length,
  };
}

/** Quoted-string escaping of names as the HTML form encoding does it: `"` and line breaks percent-encoded. */
function escapeQuoted(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
