import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ACCESS_TOKEN_HEADER, BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { CommandContext } from '../context.js';
import { deliver, prepareOutputDir, DeliveryResult } from '../deliver.js';
import { DownloadState, PendingDownload } from '../download-state.js';
import { DcxError, messageOf, unreachable } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { httpFailure, httpRequest, networkReason, parseHttpUrl } from '../http.js';
import { byteProgress } from '../progress.js';
import { trackTemp } from '../temp-files.js';
import { deliveryJson, deliveryText } from './report.js';

export interface FetchOptions {
  out: string;
  json?: boolean;
  accessToken?: string;
}

const RESUME_HINT = 'the partial download is kept: running the same command again resumes it';

/** Failures after which the partial download is kept although they are not network failures (exit 6). */
const keepPartial = new WeakSet<object>();

/**
 * `dcx fetch <url>`: asks for a bundle sealed to this installation's key, downloads it under
 * DCX_HOME/downloads/, then does exactly what `open` does (pinning the server on first use).
 *
 * A download cut off (network failure, Ctrl-C) stays there with its state; the next `dcx fetch` of
 * the same URL asks the delivery's own URL for the rest (Range + If-Range), so the same delivery
 * is completed and confirmed once, rather than a new one issued.
 */
export async function fetchCommand(urlText: string, options: FetchOptions, ctx: CommandContext): Promise<DeliveryResult> {
  const url = parseHttpUrl(urlText);
  await prepareOutputDir(options.out);
  const identity = await ctx.home.identity();
  const downloads = await ctx.home.ensureDir('downloads');
  const pending = new PendingDownload(downloads, url.href);
  const release = await pending.lock();
  try {
    const headers: Record<string, string> = {
      accept: `${BUNDLE_MEDIA_TYPE}, application/zip;q=0.9, */*;q=0.1`,
      // Byte ranges count the bytes as sent: a compressed body would not match them.
      'accept-encoding': 'identity',
      [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url'),
    };
    if (options.accessToken) headers[ACCESS_TOKEN_HEADER] = options.accessToken;
    let result: DeliveryResult;
    try {
      await download(url, headers, pending, ctx);
      result = await deliver(pending.partPath, ctx.home, {
        outDir: options.out,
        label: `the bundle from ${url.href}`,
        pinPolicy: { kind: 'first-use', origin: url.origin },
        notice: ctx.notice,
        progress: ctx.progress,
      });
    } catch (error) {
      const keep = pending.resumable && error instanceof DcxError && (error.exitCode === ExitCode.ServerUnreachable || keepPartial.has(error));
      if (!keep) {
        await pending.discard();
        throw error;
      }
      throw new DcxError(error.exitCode, `${error.message}; ${RESUME_HINT}`, { cause: error });
    }
    // Confirmed: the partial download and its state are done with; the next fetch is a new delivery.
    await pending.discard().catch(() => undefined);
    ctx.out(options.json ? JSON.stringify(deliveryJson(result)) : deliveryText(result));
    return result;
  } finally {
    pending.forget();
    await release();
  }
}

/** Leaves the whole bundle in `pending.partPath`: resumed where a saved state says, or downloaded afresh. */
async function download(url: URL, headers: Record<string, string>, pending: PendingDownload, ctx: CommandContext): Promise<void> {
  const saved = await pending.load();
  if (saved) {
    const outcome = await resume(saved, headers, pending, ctx);
    if (outcome === 'done') return;
    ctx.notice(`cannot resume the download of delivery ${saved.deliveryId} (${outcome.reason}); starting over with a new download from ${url.href}`);
    await pending.discard();
  }
  const response = await httpRequest(url, { headers, redirect: 'follow' });
  if (!response.ok) throw await httpFailure(response, `downloading ${url.href}`);
  await receive(response, url.href, 0, null, pending, ctx);
}

/** Asks the delivery's URL for the bytes after the partial download; 'done', or why not to resume. */
async function resume(state: DownloadState, headers: Record<string, string>, pending: PendingDownload, ctx: CommandContext): Promise<'done' | { reason: string }> {
  const offset = await pending.partSize();
  if (offset > state.total) return { reason: `the partial download has ${offset} bytes, more than the bundle's ${state.total}` };
  // fetch itself adds `Accept-Encoding: identity` to a request with Range (it would be sent twice).
  const { 'accept-encoding': _identity, ...rest } = headers;
  const response = await httpRequest(state.deliveryUrl, {
    headers: { ...rest, range: `bytes=${offset}-`, 'if-range': state.etag },
    redirect: 'follow',
  });
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 206) {
    const header = response.headers.get('content-range');
    const range = parseContentRange(header);
    if (!range || range.start !== offset || range.end !== state.total - 1 || range.total !== state.total) {
      await response.body?.cancel().catch(() => undefined);
      return { reason: `asked for bytes ${offset}- of ${state.total}, the server sent ${header === null ? 'no Content-Range' : `Content-Range ${header}`}` };
    }
    await receive(response, state.url, offset, state, pending, ctx);
    return 'done';
  }
  if (response.status === 200) {
    // The server would not send a part (the bundle changed, or it ignores ranges): the whole bundle again.
    if (offset > 0) ctx.notice(`the server sent the whole bundle of delivery ${state.deliveryId} again; downloading it from the start`);
    await receive(response, state.url, 0, null, pending, ctx);
    return 'done';
  }
  if ([401, 403, 408, 429].includes(response.status) || response.status >= 500) {
    // Credentials or a server in trouble, not a delivery gone: the same command later may still resume.
    const error = await httpFailure(response, `resuming the download from ${state.deliveryUrl}`);
    keepPartial.add(error);
    throw error;
  }
  await response.body?.cancel().catch(() => undefined);
  if (response.status === 416 && offset === state.total) return 'done';
  return { reason: status };
}

/**
 * Streams a bundle response into the partial file from `offset` on (never buffering it). `known`:
 * the state being resumed (a 206); otherwise the response is a whole bundle, and its state is saved
 * before the first byte is written when it can be resumed at all.
 */
async function receive(response: Response, url: string, offset: number, known: DownloadState | null, pending: PendingDownload, ctx: CommandContext): Promise<void> {
  const origin = new URL(response.url || url).origin;
  if (!response.body) throw new DcxError(ExitCode.Failure, `downloading ${url} failed: the response has no body`);
  const length = contentLength(response);
  const total = known ? known.total : length;
  if (!known) {
    const state = resumableState(response, url, length);
    if (state) {
      await pending.save(state);
    } else {
      // Nothing to resume with: as before resuming existed, a failed download leaves nothing behind.
      await pending.discard();
      trackTemp(pending.partPath);
    }
  }

  const bar = byteProgress('download', total, ctx.progress, offset);
  const source = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  let readFailed: unknown = null;
  source.once('error', (error) => (readFailed = error));
  let received = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      bar.add(chunk.length);
      callback(null, chunk);
    },
  });
  const sink = createWriteStream(pending.partPath, { flags: offset > 0 ? 'a' : 'w', mode: 0o600, highWaterMark: 1024 * 1024 });
  try {
    await pipeline(source, meter, sink);
  } catch (error) {
    if (readFailed) {
      const at = total === null ? '' : ` at ${offset + received} of ${total} bytes`;
      throw unreachable(`the download from ${origin} was interrupted${at}: ${networkReason(readFailed)}`, error);
    }
    throw new DcxError(ExitCode.Failure, `cannot write the download to ${pending.partPath}: ${messageOf(error)}`, { cause: error });
  } finally {
    bar.stop();
  }
  if (total !== null && offset + received < total) {
    throw unreachable(`the download from ${origin} ended at ${offset + received} of ${total} bytes`);
  }
  if (total !== null && offset + received > total) {
    throw new DcxError(ExitCode.Failure, `the download from ${origin} sent ${offset + received} bytes, more than the ${total} it announced`);
  }
}

/**
 * The state to resume a whole-bundle response with, or null when it cannot be resumed: it must name
 * its delivery, have an exact length, a strong ETag, an unencoded body and a Content-Location on
 * the same origin (the access token is sent there too).
 */
function resumableState(response: Response, url: string, length: number | null): DownloadState | null {
  const deliveryId = response.headers.get('dcx-delivery-id');
  const location = response.headers.get('content-location');
  const etag = response.headers.get('etag');
  const encoding = response.headers.get('content-encoding');
  if (response.status !== 200 || !deliveryId || !location || !etag || length === null) return null;
  if (!/^"[^"]*"$/.test(etag)) return null; // weak (W/"…") or malformed: If-Range needs a strong validator
  if (encoding && encoding.toLowerCase() !== 'identity') return null;
  const base = new URL(response.url || url);
  let deliveryUrl: URL;
  try {
    deliveryUrl = new URL(location, base);
  } catch {
    return null;
  }
  if (deliveryUrl.origin !== base.origin) return null;
  return { url, deliveryUrl: deliveryUrl.href, etag, total: length, deliveryId };
}

function contentLength(response: Response): number | null {
  const text = response.headers.get('content-length');
  if (text === null || !/^\d+$/.test(text.trim())) return null;
  const length = Number(text);
  return Number.isSafeInteger(length) ? length : null;
}

/** `bytes START-END/TOTAL` (a satisfied range with a known total), or null. */
export function parseContentRange(header: string | null): { start: number; end: number; total: number } | null {
  const match = header === null ? null : /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!match) return null;
  const [start, end, total] = match.slice(1).map(Number);
  if (![start, end, total].every(Number.isSafeInteger) || start > end || end >= total) return null;
  return { start, end, total };
}
