import { ACCESS_TOKEN_HEADER, BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { acceptBundle, AcceptOptions, DeliveryResult, prepareOutputDir } from '../accept-bundle.js';
import { ConfirmOptions } from '../confirm-client.js';
import { CommandContext } from '../context.js';
import { downloadBundle, keepsPartialDownload, markKeepsPartial } from '../download/resume.js';
import { PendingDownload } from '../download/state.js';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { parseHttpUrl } from '../http.js';
import { KeptInOutbox } from '../outbox.js';
import { RequestSigner } from '../signed-request.js';
import { deliveryJson, deliveryText } from './report.js';

export interface FetchOptions {
  out: string;
  json?: boolean;
  accessToken?: string;
  /** How the confirmation travels (--via, --confirm-timeout). */
  confirm?: ConfirmOptions;
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
 *
 * At an origin this installation is enrolled at (`dcx enrol`), every request is signed: a personal
 * link (…/api/inbox/<id>/bundle) works, and the bundle must be signed by that origin's pinned key.
 */
export async function fetchCommand(urlText: string, options: FetchOptions, ctx: CommandContext): Promise<DeliveryResult> {
  const url = parseHttpUrl(urlText);
  await prepareOutputDir(options.out);
  const enrolled = await RequestSigner.forEnrolledOrigin(ctx.home, url.origin);
  const result = await pullBundle(
    url,
    { out: options.out, accessToken: options.accessToken, signer: enrolled?.signer ?? null, confirm: options.confirm },
    ctx,
  );
  ctx.out(options.json ? JSON.stringify(deliveryJson(result)) : deliveryText(result));
  return result;
}

export interface PullOptions {
  out: string;
  accessToken?: string;
  /** Signs every request (an enrolled origin), and then only that origin's pinned key may sign the bundle. */
  signer: RequestSigner | null;
  confirm?: ConfirmOptions;
  /** Passed to acceptBundle: the agent confirms with the ack of POST /api/inbox/next. */
  confirmWith?: AcceptOptions['confirmWith'];
}

/** Downloads (or resumes), saves, verifies and confirms one bundle: `dcx fetch`, and each item of `dcx inbox`. */
export async function pullBundle(url: URL, options: PullOptions, ctx: CommandContext): Promise<DeliveryResult> {
  const identity = await ctx.home.identity();
  const downloads = await ctx.home.ensureDir('downloads');
  const pending = new PendingDownload(downloads, url.href);
  const release = await pending.lock();
  try {
    const fixed: Record<string, string> = {
      accept: `${BUNDLE_MEDIA_TYPE}, application/zip;q=0.9, */*;q=0.1`,
      // Byte ranges count the bytes as sent: a compressed body would not match them.
      'accept-encoding': 'identity',
      [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url'),
    };
    if (options.accessToken) fixed[ACCESS_TOKEN_HEADER] = options.accessToken;
    const signer = options.signer;
    // A fresh signature for every request: the first, each redirect, a resumed Range request.
    const headers = signer ? (target: URL) => ({ ...fixed, ...signer.headers('GET', target) }) : fixed;
    let result: DeliveryResult;
    try {
      const bundle = await downloadBundle(url, headers, pending, ctx).catch((error: unknown) => {
        throw refusedDownload(error, url, signer, options.accessToken);
      });
      result = await acceptBundle(bundle, ctx.home, {
        outDir: options.out,
        label: `the bundle from ${url.href}`,
        pinPolicy: signer ? { kind: 'origin', origin: signer.server.origin } : { kind: 'first-use', origin: url.origin },
        notice: ctx.notice,
        progress: ctx.progress,
        confirm: options.confirm,
        confirmWith: options.confirmWith,
      });
    } catch (error) {
      // Saved, and its confirmation waits in the outbox: the download is done with.
      if (error instanceof KeptInOutbox) {
        await pending.discard().catch(() => undefined);
        throw error;
      }
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
    return result;
  } finally {
    pending.forget();
    await release();
  }
}

/**
 * A personal link refused for who this installation is (401, 403) is exit 8, with what to do about it;
 * other failures are left as they are.
 */
function refusedDownload(error: unknown, url: URL, signer: RequestSigner | null, accessToken: string | undefined): unknown {
  if (!(error instanceof DcxError) || (error.status !== 401 && error.status !== 403)) return error;
  if (!signer && !url.pathname.startsWith('/api/inbox/')) return withAccessTokenHint(error, accessToken);
  const hint = signer ? '' : `; this installation is not enrolled at ${url.origin} (run \`dcx enrol ${url.origin} --code <code>\`)`;
  const refused = new DcxError(ExitCode.Refused, `${error.message}${hint}`, { cause: error, status: error.status });
  if (keepsPartialDownload(error)) markKeepsPartial(refused);
  return refused;
}

/** A bundle link refused 401 (no token) or 403 (a wrong one): a token content wants its access token (issue 21: the message did not say how). */
function withAccessTokenHint(error: DcxError, accessToken: string | undefined): DcxError {
  // Without a token the server answers 401; with a wrong one, 403.
  if (accessToken === undefined ? error.status !== 401 : error.status !== 401 && error.status !== 403) return error;
  const hint = accessToken
    ? 'the access token given with --access-token was not accepted'
    : 'this content needs its access token: pass it with --access-token <token> (`dcx publish --access token` printed it)';
  const hinted = new DcxError(error.exitCode, `${error.message}; ${hint}`, { cause: error, status: error.status });
  if (keepsPartialDownload(error)) markKeepsPartial(hinted);
  return hinted;
}
