// Acquire next with deletion [seed 003]: POST /api/inbox/next acks the previous delivery with its
// confirmation and leases the next one, in one signed call (docs/design/resident-agent.md §3).
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { RequestSigner, signedFailure } from '../signed-request.js';
import { InboxItem } from '../commands/inbox.js';

export const NEXT_PATH = '/api/inbox/next';
/** The server's bounds on `leaseSeconds`. */
export const MIN_LEASE_SECONDS = 10;
export const MAX_LEASE_SECONDS = 3600;

export interface Ack {
  deliveryId: string;
  /** The confirmation frame [50], as sent to the TCP port. */
  confirmation: Buffer;
}

export interface LeasedItem extends InboxItem {
  leaseExpiresAt: string;
}

export interface NextAnswer {
  acked: { deliveryId: string; status: string; answer: Buffer } | null;
  next: LeasedItem | null;
  waiting: number;
}

/** One `next` call: the ack (if any) decided, then the next delivery leased (or none). */
export async function inboxNext(signer: RequestSigner, origin: string, request: { ack?: Ack; leaseSeconds?: number }): Promise<NextAnswer> {
  const url = new URL(NEXT_PATH, origin);
  const body = {
    ...(request.ack ? { ack: { deliveryId: request.ack.deliveryId, confirmation: request.ack.confirmation.toString('base64') } } : {}),
    ...(request.leaseSeconds !== undefined ? { leaseSeconds: request.leaseSeconds } : {}),
  };
  const response = await signer.json('POST', url, body);
  if (response.status !== 200 && response.status !== 201) throw await signedFailure(response, `asking ${url.href} for the next delivery`);
  return parseNextAnswer(await response.json().catch(() => null), url.href);
}

export function parseNextAnswer(body: unknown, where: string): NextAnswer {
  const answer = (body ?? {}) as Record<string, unknown>;
  const acked = answer.acked as Record<string, unknown> | null | undefined;
  const next = answer.next as Record<string, unknown> | null | undefined;
  const ackedOk =
    acked === null ||
    (typeof acked === 'object' &&
      typeof acked.deliveryId === 'string' &&
      typeof acked.status === 'string' &&
      typeof acked.answer === 'string');
  const nextOk =
    next === null ||
    (typeof next === 'object' &&
      typeof next.deliveryId === 'string' &&
      typeof next.name === 'string' &&
      typeof next.size === 'number' &&
      typeof next.bundleUrl === 'string' &&
      next.bundleUrl !== '');
  if (!ackedOk || !nextOk || typeof answer.waiting !== 'number') {
    throw new DcxError(ExitCode.Failure, `${where} did not answer with {acked, next, waiting}`);
  }
  return {
    acked: acked
      ? { deliveryId: acked.deliveryId as string, status: acked.status as string, answer: Buffer.from(acked.answer as string, 'base64') }
      : null,
    next: next ? (next as unknown as LeasedItem) : null,
    waiting: answer.waiting,
  };
}
