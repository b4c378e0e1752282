import { ConfirmOptions } from '../confirm-client.js';
import { CommandContext } from '../context.js';
import { DcxError, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { OutboxEntry } from '../outbox.js';

export interface RetryOptions {
  /** Every entry now, not only the due ones. */
  all?: boolean;
  json?: boolean;
  confirm?: ConfirmOptions;
}

export type RetryOutcome =
  | { entry: OutboxEntry; status: 'accepted' | 'already_confirmed'; receiptPath: string }
  | { entry: OutboxEntry; error: { exitCode: ExitCode; message: string } }
  | { entry: OutboxEntry; waiting: true };

/**
 * `dcx retry`: sends every due confirmation of DCX_HOME/outbox (`--all`: every one, due or not), each as
 * `--via` says. A receipt is stored and the entry removed; a failure stays, put off with backoff. The exit
 * code is the first failure's; 0 when everything sent was confirmed (or nothing was due).
 */
export async function retryCommand(options: RetryOptions, ctx: CommandContext): Promise<RetryOutcome[]> {
  const outbox = ctx.home.outbox();
  const now = Date.now();
  const outcomes: RetryOutcome[] = [];
  for (const entry of await outbox.list()) {
    if (!options.all && Date.parse(entry.nextAttemptAt) > now) {
      outcomes.push({ entry, waiting: true });
      continue;
    }
    try {
      const outcome = await outbox.send(entry, options.confirm);
      outcomes.push({ entry, status: outcome.status, receiptPath: ctx.home.receiptPath(entry.deliveryId) });
    } catch (error) {
      outcomes.push({
        entry,
        error: { exitCode: error instanceof DcxError ? error.exitCode : ExitCode.Failure, message: messageOf(error) },
      });
    }
  }
  ctx.out(options.json ? JSON.stringify(retryJson(outcomes)) : retryText(outcomes));
  const failed = outcomes.find((o) => 'error' in o);
  if (failed && 'error' in failed) throw new DcxError(failed.error.exitCode, `${failed.entry.deliveryId}: ${failed.error.message}`);
  return outcomes;
}

function retryJson(outcomes: RetryOutcome[]): object {
  return {
    confirmed: outcomes.filter((o) => 'status' in o).length,
    failed: outcomes.filter((o) => 'error' in o).length,
    waiting: outcomes.filter((o) => 'waiting' in o).length,
    items: outcomes.map((o) => ({
      deliveryId: o.entry.deliveryId,
      ...('status' in o ? { status: o.status, receiptPath: o.receiptPath } : {}),
      ...('error' in o ? { status: 'failed', exitCode: o.error.exitCode, message: o.error.message } : {}),
      ...('waiting' in o ? { status: 'waiting', nextAttemptAt: o.entry.nextAttemptAt } : {}),
    })),
  };
}

function retryText(outcomes: RetryOutcome[]): string {
  if (outcomes.length === 0) return 'the outbox is empty';
  const lines = outcomes.map((o) => {
    if ('status' in o)
      return `${o.status === 'accepted' ? 'confirmed' : 'already confirmed'} ${o.entry.deliveryId}; receipt: ${o.receiptPath}`;
    if ('error' in o) return `kept ${o.entry.deliveryId}: ${o.error.message}`;
    return `waiting ${o.entry.deliveryId} until ${o.entry.nextAttemptAt} (--all sends it now)`;
  });
  return lines.join('\n');
}
