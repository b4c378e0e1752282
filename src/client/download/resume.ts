import { DcxError, messageOf, unreachable } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { httpFailure, networkReason } from '../http.js';
import { CommandContext } from '../context.js';
import { byteProgress } from '../progress.js';
import { BundleSource } from './bundle-source.js';
import { DownloadResponse, headersFor, httpDownload, RequestHeaders } from './connection.js';
import { DownloadState, PendingDownload } from './state.js';
import { DownloadWriter } from './writer.js';

/** Failures after which the partial download is kept although they are not network failures (exit 6). */
const keepPartial = new WeakSet<object>();

/** Whether a failure of `downloadBundle` that is not a network failure still keeps the partial download. */
export function keepsPartialDownload(error: object): boolean {
  return keepPartial.has(error);
}

/** For an error made from one that kept the partial download: it keeps it too. */
export function markKeepsPartial(error: object): void {
  keepPartial.add(error);
}

/** Downloads the whole bundle under DCX_HOME/downloads: resumed where a saved state says, or afresh. */
export async function downloadBundle(
  url: URL,
  headers: RequestHeaders,
  pending: PendingDownload,
  ctx: CommandContext,
): Promise<BundleSource> {
  const saved = await pending.load();
  if (saved) {
    const outcome = await resume(saved, headers, pending, ctx);
    if (!('reason' in outcome)) return outcome;
    ctx.notice(
      `cannot resume the download of delivery ${saved.deliveryId} (${outcome.reason}); starting over with a new download from ${url.href}`,
    );
    await pending.discard();
  }
  const response = await httpDownload(url, headers);
  if (!response.ok) throw await httpFailure(response, `downloading ${url.href}`);
  return receive(response, url.href, null, pending, ctx);
}

/** Asks the delivery's URL for the bytes after the partial download; the bundle, or why not to resume. */
async function resume(
  state: DownloadState,
  headers: RequestHeaders,
  pending: PendingDownload,
  ctx: CommandContext,
): Promise<BundleSource | { reason: string }> {
  const writer = await DownloadWriter.resume(pending, state);
  if ('reason' in writer) return writer;
  const offset = writer.offset;
  const ranged = (target: URL) => ({ ...headersFor(headers, target), range: `bytes=${offset}-`, 'if-range': state.etag });
  const response = await httpDownload(state.deliveryUrl, ranged);
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  if (response.status === 206) {
    const header = response.headers.get('content-range');
    const range = parseContentRange(header);
    if (!range || range.start !== offset || range.end !== state.total - 1 || range.total !== state.total) {
      response.cancel();
      return {
        reason:
          `asked for bytes ${offset}- of ${state.total}, the server sent ` +
          `${header === null ? 'no Content-Range' : `Content-Range ${header}`}`,
      };
    }
    return receive(response, state.url, { writer, total: state.total }, pending, ctx);
  }
  if (response.status === 200) {
    // The server would not send a part (the bundle changed, or it ignores ranges): the whole bundle again.
    if (offset > 0) ctx.notice(`the server sent the whole bundle of delivery ${state.deliveryId} again; downloading it from the start`);
    return receive(response, state.url, null, pending, ctx);
  }
  if ([401, 403, 408, 429].includes(response.status) || response.status >= 500) {
    // Credentials or a server in trouble, not a delivery gone: the same command later may still resume.
    const error = await httpFailure(response, `resuming the download from ${state.deliveryUrl}`);
    keepPartial.add(error);
    throw error;
  }
  response.cancel();
  if (response.status === 416 && offset === state.total) {
    await writer.close();
    return writer.source();
  }
  return { reason: status };
}

/**
 * Streams a bundle response into the download's files, never buffering it. `resumed`: the download
 * being carried on (a 206) and the bundle's size; otherwise the response is a whole bundle, and its
 * state is saved before the first byte is written when it can be resumed at all.
 */
async function receive(
  response: DownloadResponse,
  url: string,
  resumed: { writer: DownloadWriter; total: number } | null,
  pending: PendingDownload,
  ctx: CommandContext,
): Promise<BundleSource> {
  const origin = new URL(response.url || url).origin;
  const length = contentLength(response);
  const total = resumed ? resumed.total : length;
  const offset = resumed ? resumed.writer.offset : 0;
  const writer = resumed ? resumed.writer : await startWriter(response, url, length, pending);
  const bar = byteProgress('download', total, ctx.progress, offset);
  let received = 0;
  // Whether a failure is the disk's (exit 1) or the connection's (exit 6, the download kept).
  const failed = { writing: false, bodyDone: false };
  const take = (chunk: Buffer): void | Promise<void> => {
    received += chunk.length;
    bar.add(chunk.length);
    try {
      return writer.write(chunk)?.catch((error: unknown) => {
        failed.writing = true;
        throw error;
      });
    } catch (error) {
      failed.writing = true;
      throw error;
    }
  };
  try {
    await response.read(take);
    failed.bodyDone = true;
    await writer.close();
  } catch (error) {
    if (failed.writing || failed.bodyDone) throw cannotWrite(pending, error);
    // What arrived is kept (when the download can be resumed): the next run carries on after it.
    await writer.close().catch(() => undefined);
    const at = total === null ? '' : ` at ${offset + received} of ${total} bytes`;
    throw unreachable(`the download from ${origin} was interrupted${at}: ${networkReason(error)}`, error);
  } finally {
    bar.stop();
  }
  checkLength(origin, offset + received, total);
  return writer.source();
}

/**
 * A writer for a whole-bundle response. Whatever was there goes; without a state to resume with, a
 * failed download leaves nothing behind.
 */
async function startWriter(
  response: DownloadResponse,
  url: string,
  length: number | null,
  pending: PendingDownload,
): Promise<DownloadWriter> {
  try {
    await pending.discard();
    return await DownloadWriter.start(pending, resumableState(response, url, length));
  } catch (error) {
    response.cancel();
    throw cannotWrite(pending, error);
  }
}

/** A body that ended before or after the length it announced. */
function checkLength(origin: string, received: number, total: number | null): void {
  if (total !== null && received < total) {
    throw unreachable(`the download from ${origin} ended at ${received} of ${total} bytes`);
  }
  if (total !== null && received > total) {
    throw new DcxError(ExitCode.Failure, `the download from ${origin} sent ${received} bytes, more than the ${total} it announced`);
  }
}

/** A local failure to write the download (disk full, permissions), not the server's. */
function cannotWrite(pending: PendingDownload, error: unknown): DcxError {
  if (error instanceof DcxError) return error;
  return new DcxError(ExitCode.Failure, `cannot write the download to ${pending.partPath}: ${messageOf(error)}`, { cause: error });
}

/**
 * The state to resume a whole-bundle response with, or null when it cannot be resumed: it must name
 * its delivery, have an exact length, a strong ETag, an unencoded body and a Content-Location on
 * the same origin (the access token is sent there too).
 */
function resumableState(response: DownloadResponse, url: string, length: number | null): DownloadState | null {
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

function contentLength(response: DownloadResponse): number | null {
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
