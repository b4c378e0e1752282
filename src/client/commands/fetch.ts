import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ACCESS_TOKEN_HEADER, BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { CommandContext } from '../context.js';
import { deliver, DeliveryResult } from '../deliver.js';
import { DcxError, messageOf, unreachable } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { httpFailure, httpRequest, networkReason, parseHttpUrl } from '../http.js';
import { byteProgress } from '../progress.js';
import { discardTemp, tempPathIn, trackTemp } from '../temp-files.js';
import { deliveryJson, deliveryText } from './report.js';

export interface FetchOptions {
  out: string;
  json?: boolean;
  accessToken?: string;
}

/**
 * `dcx fetch <url>`: asks for a bundle sealed to this installation's key, downloads it under
 * DCX_HOME/downloads/, then does exactly what `open` does (pinning the server on first use).
 */
export async function fetchCommand(urlText: string, options: FetchOptions, ctx: CommandContext): Promise<DeliveryResult> {
  const url = parseHttpUrl(urlText);
  const identity = await ctx.home.identity();
  const downloads = await ctx.home.ensureDir('downloads');
  const temp = tempPathIn(downloads, '.dcx');
  trackTemp(temp);
  try {
    const headers: Record<string, string> = {
      accept: `${BUNDLE_MEDIA_TYPE}, application/zip;q=0.9, */*;q=0.1`,
      [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url'),
    };
    if (options.accessToken) headers[ACCESS_TOKEN_HEADER] = options.accessToken;
    await download(url, headers, temp, ctx.progress);
    const result = await deliver(temp, ctx.home, {
      outDir: options.out,
      label: `the bundle from ${url.href}`,
      pinPolicy: { kind: 'first-use', origin: url.origin },
      notice: ctx.notice,
      progress: ctx.progress,
    });
    ctx.out(options.json ? JSON.stringify(deliveryJson(result)) : deliveryText(result));
    return result;
  } finally {
    await discardTemp(temp);
  }
}

async function download(url: URL, headers: Record<string, string>, path: string, progress: boolean): Promise<void> {
  const response = await httpRequest(url, { headers, redirect: 'follow' });
  if (!response.ok) throw await httpFailure(response, `downloading ${url.href}`);
  if (!response.body) throw new DcxError(ExitCode.Failure, `downloading ${url.href} failed: the response has no body`);
  const length = Number(response.headers.get('content-length'));
  const bar = byteProgress('download', Number.isFinite(length) && length > 0 ? length : null, progress);
  const source = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  let readFailed: unknown = null;
  source.once('error', (error) => (readFailed = error));
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bar.add(chunk.length);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, createWriteStream(path, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 }));
  } catch (error) {
    if (readFailed) throw unreachable(`the download from ${url.origin} was interrupted: ${networkReason(readFailed)}`, error);
    throw new DcxError(ExitCode.Failure, `cannot write the download to ${path}: ${messageOf(error)}`, { cause: error });
  } finally {
    bar.stop();
  }
}
