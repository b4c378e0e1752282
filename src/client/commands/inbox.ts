import { DeliveryResult, prepareOutputDir } from '../accept-bundle.js';
import { ConfirmOptions } from '../confirm-client.js';
import { CommandContext } from '../context.js';
import { DcxError, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { parseHttpUrl } from '../http.js';
import { formatBytes } from '../progress.js';
import { RequestSigner, signedFailure } from '../signed-request.js';
import { pullBundle } from './fetch.js';

export interface InboxOptions {
  out: string;
  json?: boolean;
  /** How each confirmation travels (--via, --confirm-timeout). */
  confirm?: ConfirmOptions;
}

export const INBOX_PATH = '/api/inbox';

/** One item of GET /api/inbox (docs/design/recipients-distributions.md). */
export interface InboxItem {
  deliveryId: string;
  distributionId: string;
  contentId: string;
  name: string;
  size: number;
  mediaType: string;
  sha256: string;
  note: string | null;
  dueAt: string | null;
  bundleUrl: string;
}

export type InboxOutcome =
  { item: InboxItem; result: DeliveryResult } | { item: InboxItem; error: { exitCode: ExitCode; message: string } };

/**
 * `dcx inbox <server-url> --out <dir>`: one pass over what the server holds for this recipient: each
 * item pulled from its personal link (signed, resumable as `dcx fetch`), saved, verified, confirmed.
 * One failure does not stop the others; the exit code is the first failure's, 0 when all confirmed.
 */
export async function inboxCommand(urlText: string, options: InboxOptions, ctx: CommandContext): Promise<InboxOutcome[]> {
  const url = parseHttpUrl(urlText, 'server URL');
  await prepareOutputDir(options.out);
  const enrolled = await RequestSigner.forEnrolledOrigin(ctx.home, url.origin);
  if (!enrolled) {
    throw new DcxError(
      ExitCode.Refused,
      `this installation is not enrolled at ${url.origin}; run \`dcx enrol ${url.origin} --code <code>\``,
    );
  }
  const { signer } = enrolled;
  const items = await listInbox(signer, url.origin);

  const outcomes: InboxOutcome[] = [];
  for (const [index, item] of items.entries()) {
    if (ctx.progress) ctx.notice(`[${index + 1}/${items.length}] ${item.name} (${formatBytes(item.size)})`);
    try {
      const bundleUrl = new URL(item.bundleUrl, url.origin);
      outcomes.push({ item, result: await pullBundle(bundleUrl, { out: options.out, signer, confirm: options.confirm }, ctx) });
    } catch (error) {
      const exitCode = error instanceof DcxError ? error.exitCode : ExitCode.Failure;
      outcomes.push({ item, error: { exitCode, message: messageOf(error) } });
    }
  }

  ctx.out(options.json ? JSON.stringify(inboxJson(url.origin, outcomes)) : inboxText(outcomes));
  const failed = outcomes.find((o) => 'error' in o);
  if (failed && 'error' in failed) {
    const count = outcomes.filter((o) => 'error' in o).length;
    throw new DcxError(
      failed.error.exitCode,
      `${count} of ${outcomes.length} deliveries failed; first: ${failed.item.name}: ${failed.error.message}`,
    );
  }
  return outcomes;
}

/** Signed GET /api/inbox: the items, checked to be what the contract says. */
async function listInbox(signer: RequestSigner, origin: string): Promise<InboxItem[]> {
  const inboxUrl = new URL(INBOX_PATH, origin);
  const response = await signer.json('GET', inboxUrl);
  if (!response.ok) throw await signedFailure(response, `reading the inbox ${inboxUrl.href}`);
  const body = (await response.json().catch(() => null)) as { items?: unknown } | null;
  if (!body || !Array.isArray(body.items) || !body.items.every(isInboxItem)) {
    throw new DcxError(ExitCode.Failure, `${inboxUrl.href} did not answer with {items: [{deliveryId, name, size, bundleUrl, …}]}`);
  }
  return body.items;
}

function isInboxItem(value: unknown): value is InboxItem {
  const item = (value ?? {}) as Record<string, unknown>;
  return (
    typeof item.deliveryId === 'string' &&
    typeof item.name === 'string' &&
    typeof item.size === 'number' &&
    typeof item.bundleUrl === 'string' &&
    item.bundleUrl !== ''
  );
}

function inboxJson(origin: string, outcomes: InboxOutcome[]): object {
  return {
    server: origin,
    confirmed: outcomes.filter((o) => 'result' in o).length,
    failed: outcomes.filter((o) => 'error' in o).length,
    items: outcomes.map((o) => ({
      deliveryId: o.item.deliveryId,
      distributionId: o.item.distributionId,
      name: o.item.name,
      ...('result' in o
        ? {
            status: o.result.status === 'accepted' ? 'confirmed' : 'already_confirmed',
            files: o.result.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })),
            receiptPath: o.result.receiptPath,
          }
        : { status: 'failed', exitCode: o.error.exitCode, error: o.error.message }),
    })),
  };
}

function inboxText(outcomes: InboxOutcome[]): string {
  if (outcomes.length === 0) return 'nothing waiting';
  const lines = outcomes.map((o) =>
    'result' in o
      ? `${o.result.status === 'accepted' ? 'confirmed' : 'already confirmed'} ${o.item.name}: ${o.result.files.map((f) => f.path).join(', ')} (receipt ${o.result.receiptPath})`
      : `FAILED    ${o.item.name} (delivery ${o.item.deliveryId}): ${o.error.message}`,
  );
  const confirmed = outcomes.filter((o) => 'result' in o).length;
  const failures = outcomes.filter((o) => 'error' in o).map((o) => o.item.name);
  lines.push(`${confirmed} confirmed${failures.length ? `, ${failures.length} failed: ${failures.join(', ')}` : ''}`);
  return lines.join('\n');
}
