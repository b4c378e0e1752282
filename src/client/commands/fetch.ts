import { ACCESS_TOKEN_HEADER, BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { acceptBundle, DeliveryResult, prepareOutputDir } from '../accept-bundle.js';
import { CommandContext } from '../context.js';
import { downloadBundle, keepsPartialDownload } from '../download/resume.js';
import { PendingDownload } from '../download/state.js';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { parseHttpUrl } from '../http.js';
import { deliveryJson, deliveryText } from './report.js';

export interface FetchOptions {
  out: string;
  json?: boolean;
  accessToken?: string;
}

const RESUME_HINT = 'the partial download is kept: running the same command again resumes it';

/**
 * `dcx fetch <url>`: asks for a bundle sealed to this installation's key, downloads it under
 * DCX_HOME/downloads/ (its content written and hashed once, as it arrives: see DownloadWriter), then
 * does exactly what `open` does (pinning the server on first use).
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
      const bundle = await downloadBundle(url, headers, pending, ctx);
      result = await acceptBundle(bundle, ctx.home, {
        outDir: options.out,
        label: `the bundle from ${url.href}`,
        pinPolicy: { kind: 'first-use', origin: url.origin },
        notice: ctx.notice,
        progress: ctx.progress,
      });
    } catch (error) {
      const keep =
        pending.resumable && error instanceof DcxError && (error.exitCode === ExitCode.ServerUnreachable || keepsPartialDownload(error));
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
