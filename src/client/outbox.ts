import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  checkAnswer,
  ConfirmOptions,
  ConfirmOutcome,
  ConfirmRequest,
  ConfirmTarget,
  HttpsAnswer,
  sendWithRetries,
} from './confirm-client.js';
import { DcxError, errnoCode, messageOf, unreachable } from './errors.js';
import { ExitCode } from './exit-codes.js';
import type { DcxHome } from './home.js';
import { readTextIfPresent, writePrivateFileAtomic } from './home.js';
import { AnswerStatus } from '../protocol/answer.js';

/** The first retry of a confirmation that could not be sent waits up to this long (full jitter)… */
export const OUTBOX_BACKOFF_BASE_MS = 5_000;
/** …doubling with every failure up to this. */
export const OUTBOX_BACKOFF_MAX_MS = 3_600_000;

const DELIVERY_ID = /^[0-9a-f-]{36}$/i;

/** One confirmation waiting under DCX_HOME/outbox/<deliveryId>.json (docs/design/resident-agent.md §1). */
export interface OutboxEntry {
  deliveryId: string;
  /** The confirmation frame [50], base64: sent as it is, over TCP or HTTPS. */
  frame: string;
  tcp: ConfirmTarget;
  httpsUrl: string;
  /** The server's Ed25519 key the receipt must verify against, base64url. */
  serverSignKey: string;
  digests: string[];
  files: { path: string; size: number; sha256: string }[];
  createdAt: string;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
}

/** What a new entry needs; the bookkeeping fields start fresh. */
export type NewOutboxEntry = Omit<OutboxEntry, 'createdAt' | 'attempts' | 'nextAttemptAt' | 'lastError'>;

/**
 * The wait before the next attempt after `attempts` failures: exponential backoff with full jitter (a random
 * delay from 0 to base·2^(attempts-1), capped), never shorter than the server's Retry-After.
 */
export function backoffDelayMs(attempts: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(OUTBOX_BACKOFF_MAX_MS, OUTBOX_BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
  return Math.max(Math.floor(random() * ceiling), retryAfterMs ?? 0);
}

/** The outbox entry of a confirmation about to be sent for the first time. */
export function outboxEntryOf(request: ConfirmRequest, frame: Buffer, files: OutboxEntry['files']): NewOutboxEntry {
  return {
    deliveryId: request.deliveryId,
    frame: frame.toString('base64'),
    tcp: request.target,
    httpsUrl: request.httpsUrl,
    serverSignKey: request.serverSignPublicKey.toString('base64url'),
    digests: request.digests,
    files,
  };
}

/**
 * DCX_HOME/outbox: confirmations written before they are first sent and removed once the server decided them
 * (a receipt stored, or a refusal). One that could not be sent at all stays, for `dcx retry` and the agent.
 */
export class Outbox {
  readonly dir: string;

  constructor(private readonly home: DcxHome) {
    this.dir = join(home.dir, 'outbox');
  }

  private path(deliveryId: string): string {
    if (!DELIVERY_ID.test(deliveryId)) throw new DcxError(ExitCode.Failure, `not a delivery id: ${JSON.stringify(deliveryId)}`);
    return join(this.dir, `${deliveryId.toLowerCase()}.json`);
  }

  async add(entry: NewOutboxEntry, now = new Date()): Promise<OutboxEntry> {
    const full: OutboxEntry = { ...entry, createdAt: now.toISOString(), attempts: 0, nextAttemptAt: now.toISOString(), lastError: null };
    await this.write(full);
    return full;
  }

  private async write(entry: OutboxEntry): Promise<void> {
    await this.home.ensureDir('outbox');
    await writePrivateFileAtomic(this.path(entry.deliveryId), JSON.stringify(entry, null, 2) + '\n');
  }

  async get(deliveryId: string): Promise<OutboxEntry | null> {
    const path = this.path(deliveryId);
    const text = await readTextIfPresent(path, 'the outbox entry');
    if (text === null) return null;
    try {
      return JSON.parse(text) as OutboxEntry;
    } catch (error) {
      throw new DcxError(ExitCode.Failure, `the outbox entry ${path} is unusable: ${messageOf(error)}`);
    }
  }

  /** Every entry, oldest first. */
  async list(): Promise<OutboxEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw new DcxError(ExitCode.Failure, `cannot read the outbox ${this.dir}: ${messageOf(error)}`);
    }
    const ids = names.filter((name) => /^[0-9a-f-]{36}\.json$/.test(name)).map((name) => name.slice(0, -'.json'.length));
    const entries = (await Promise.all(ids.map((id) => this.get(id)))).filter((e): e is OutboxEntry => e !== null);
    return entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async remove(deliveryId: string): Promise<void> {
    await rm(this.path(deliveryId), { force: true });
  }

  /** A failed attempt: counted, its error kept, the next one put off (backoffDelayMs). */
  async recordFailure(deliveryId: string, error: unknown, retryAfterMs?: number, now = new Date()): Promise<OutboxEntry | null> {
    const entry = await this.get(deliveryId);
    if (!entry) return null;
    const attempts = entry.attempts + 1;
    const next: OutboxEntry = {
      ...entry,
      attempts,
      lastError: messageOf(error),
      nextAttemptAt: new Date(now.getTime() + backoffDelayMs(attempts, retryAfterMs)).toISOString(),
    };
    await this.write(next);
    return next;
  }

  /**
   * Sends an entry's frame (as `options.via` says) and checks the answer: a receipt is stored and the entry
   * removed; a refusal removes it too (the server decided; exit 5). Anything else keeps it, with the failure
   * recorded and the server's Retry-After honoured.
   */
  async send(entry: OutboxEntry, options: ConfirmOptions = {}): Promise<ConfirmOutcome> {
    const check = {
      deliveryId: entry.deliveryId,
      digests: entry.digests,
      serverSignPublicKey: Buffer.from(entry.serverSignKey, 'base64url'),
    };
    let sent: HttpsAnswer;
    try {
      sent = await sendWithRetries(Buffer.from(entry.frame, 'base64'), { target: entry.tcp, httpsUrl: entry.httpsUrl }, options);
    } catch (error) {
      await this.recordFailure(entry.deliveryId, error);
      throw error;
    }
    if (sent.answer.status === AnswerStatus.TryLater) {
      const error = unreachable(`the server cannot record confirmations right now (${sent.answer.message})`);
      await this.recordFailure(entry.deliveryId, error, sent.retryAfterMs);
      throw error;
    }
    let outcome: ConfirmOutcome;
    try {
      outcome = checkAnswer(sent.answer, check);
    } catch (error) {
      if (error instanceof DcxError && error.exitCode === ExitCode.ConfirmationRefused) await this.remove(entry.deliveryId);
      else await this.recordFailure(entry.deliveryId, error);
      throw error;
    }
    await this.home.saveReceipt(entry.deliveryId, outcome.receipt);
    await this.remove(entry.deliveryId);
    return outcome;
  }
}

/** The hint a confirmation kept in the outbox ends with. */
export const OUTBOX_HINT = 'the confirmation is kept in the outbox; `dcx retry` sends it';

/** A confirmation that could not be sent at all and waits in the outbox (exit 6). */
export class KeptInOutbox extends DcxError {
  constructor(cause: DcxError) {
    super(ExitCode.ServerUnreachable, `${cause.message}; ${OUTBOX_HINT}`, { cause, status: cause.status });
  }
}
