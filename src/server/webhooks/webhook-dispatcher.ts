import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectDataSource } from '@nestjs/typeorm';
import { Subscription } from 'rxjs';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { DeliveryEvent } from '../deliveries/delivery-event.entity.js';
import { DeliveryEventsBus } from '../deliveries/delivery-events.bus.js';
import { Delivery } from '../deliveries/delivery.entity.js';
import { toDeliveryView } from '../deliveries/dto/delivery.view.js';
import { backoffDelayMs } from './backoff.js';
import { SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './webhook-signature.js';

const POLL_NAME = 'webhook-dispatch';
/** A claimed job is held this much longer than a POST may take; a crashed worker's jobs come back after it. */
const LEASE_MARGIN_MS = 30_000;
const MAX_ERROR_LENGTH = 500;

interface ClaimedJob {
  id: string;
  webhook_id: string;
  event_id: string;
  delivery_id: string | null;
  attempts: number;
  body: string | null;
  url: string;
  secret: string;
}

interface Outcome {
  success: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/**
 * Claims one due job per (webhook, delivery) that has no earlier job of the same delivery still
 * pending, so a delivery's events reach a webhook in order; rows being claimed by another replica are
 * skipped. The claim is a lease (locked_until), not a held transaction: no transaction stays open
 * while a receiver is slow, which also matters on PGlite, where transactions run one at a time.
 */
const CLAIM_SQL = `
  WITH due AS (
    SELECT j.id FROM webhook_jobs j
    WHERE j.state = 'pending' AND j.next_attempt_at <= now()
      AND (j.locked_until IS NULL OR j.locked_until < now())
      AND NOT EXISTS (
        SELECT 1 FROM webhook_jobs p
        WHERE p.webhook_id = j.webhook_id AND p.state = 'pending' AND p.id < j.id
          AND p.delivery_id IS NOT DISTINCT FROM j.delivery_id
      )
    ORDER BY j.next_attempt_at, j.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE webhook_jobs j
    SET locked_until = now() + make_interval(secs => $2::double precision / 1000), attempts = j.attempts + 1
    FROM due, webhooks w
    WHERE j.id = due.id AND w.id = j.webhook_id
    RETURNING j.id, j.webhook_id, j.event_id, j.delivery_id, j.attempts, j.body, w.url, w.secret
  )
  SELECT * FROM claimed ORDER BY id`;

/**
 * The webhook worker: POSTs outbox jobs, signed, with bounded concurrency (WEBHOOK_CONCURRENCY) and a
 * timeout per POST (WEBHOOK_TIMEOUT_MS), retrying with exponential backoff up to WEBHOOK_MAX_ATTEMPTS.
 * It runs beside request handling, never in it: a slow or failing receiver delays only its own jobs.
 * Woken by committed events on the bus and by a poll (for retries and other replicas' events).
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private readonly shutdown = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private subscription: Subscription | null = null;
  private claiming = false;
  private claimAgain = false;
  /** Webhooks known to exist (refreshed by every poll): events wake the worker only when there are some. */
  private webhookCount = 0;
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly config: AppConfig,
    private readonly bus: DeliveryEventsBus,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.refreshWebhookCount();
    this.subscription = this.bus.events$.subscribe(() => {
      if (this.webhookCount > 0) this.kick();
    });
    this.scheduler.addInterval(POLL_NAME, setInterval(() => void this.poll(), this.config.webhookPollIntervalMs));
    this.kick();
  }

  async onApplicationShutdown(): Promise<void> {
    this.subscription?.unsubscribe();
    if (this.scheduler.doesExist('interval', POLL_NAME)) this.scheduler.deleteInterval(POLL_NAME);
    // POSTs in flight are abandoned unrecorded; their leases run out and a worker sends them again.
    this.shutdown.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** The webhooks service tells this process at once; other replicas learn at their next poll. */
  webhooksChanged(delta: number): void {
    this.webhookCount = Math.max(0, this.webhookCount + delta);
    if (delta > 0) this.kick();
  }

  private async poll(): Promise<void> {
    try {
      await this.refreshWebhookCount();
    } catch (error) {
      this.logger.warn(`webhook worker: ${(error as Error).message}`);
      return;
    }
    if (this.webhookCount > 0) this.kick();
  }

  private async refreshWebhookCount(): Promise<void> {
    const [row] = (await this.dataSource.query(`SELECT count(*)::int AS n FROM webhooks WHERE active`)) as { n: number }[];
    this.webhookCount = row.n;
  }

  /** Claims as many due jobs as there are free slots and starts them; one claim query at a time. */
  private kick(): void {
    if (this.shutdown.signal.aborted) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop().finally(() => (this.claiming = false));
  }

  private async claimLoop(): Promise<void> {
    do {
      this.claimAgain = false;
      const free = this.config.webhookConcurrency - this.inFlight.size;
      if (free <= 0 || this.shutdown.signal.aborted) return;
      let jobs: ClaimedJob[];
      try {
        jobs = (await this.dataSource.query(CLAIM_SQL, [free, this.config.webhookTimeoutMs + LEASE_MARGIN_MS])) as ClaimedJob[];
      } catch (error) {
        if (!this.shutdown.signal.aborted) this.logger.warn(`webhook worker cannot claim jobs: ${(error as Error).message}`);
        return;
      }
      for (const job of jobs) {
        const run: Promise<void> = this.run(job)
          .catch((error: unknown) => this.logger.warn(`webhook job ${job.id}: ${(error as Error).message}`))
          .finally(() => {
            this.inFlight.delete(run);
            this.kick();
          });
        this.inFlight.add(run);
      }
      if (jobs.length === free) this.claimAgain = true;
    } while (this.claimAgain);
  }

  private async run(job: ClaimedJob): Promise<void> {
    const body = job.body ?? (await this.buildBody(job));
    const outcome = await this.post(job, body);
    if (this.shutdown.signal.aborted && !outcome.success) return;
    await this.record(job, body, outcome);
  }

  /** The JSON body of an event: fixed at the first attempt (the delivery as it was then). */
  private async buildBody(job: ClaimedJob): Promise<string> {
    const event = await this.dataSource.getRepository(DeliveryEvent).findOneByOrFail({ id: job.event_id });
    const delivery = event.deliveryId ? await this.dataSource.getRepository(Delivery).findOne({ where: { id: event.deliveryId }, relations: { content: true } }) : null;
    const refused = event.type === 'refused';
    return JSON.stringify({
      id: String(event.id),
      deliveryId: event.deliveryId,
      type: event.type,
      refused,
      status: refused || event.type === 'reissued' ? null : event.type,
      reason: event.reason,
      remoteAddress: event.remoteAddress,
      at: event.at,
      detail: event.detail,
      delivery: delivery ? toDeliveryView(delivery) : null,
    });
  }

  private async post(job: ClaimedJob, body: string): Promise<Outcome> {
    const timestamp = Math.floor(Date.now() / 1000);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    try {
      const response = await fetch(job.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'dcx-webhooks/1',
          [SIGNATURE_HEADER]: signWebhook(job.secret, timestamp, body),
          [TIMESTAMP_HEADER]: String(timestamp),
          'DCX-Event-Id': job.event_id,
          'DCX-Webhook-Id': job.webhook_id,
          'DCX-Attempt': String(job.attempts),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.config.webhookTimeoutMs), this.shutdown.signal]),
      });
      // The receiver's answer is not read: only its status counts. Cancelling frees the connection.
      await response.body?.cancel().catch(() => undefined);
      const success = response.status >= 200 && response.status < 300;
      return { success, statusCode: response.status, error: success ? null : `HTTP ${response.status}`, durationMs: elapsed() };
    } catch (error) {
      const name = (error as Error).name;
      const reason =
        name === 'TimeoutError' ? `no answer within ${this.config.webhookTimeoutMs} ms` : networkReason(error);
      return { success: false, statusCode: null, error: reason, durationMs: elapsed() };
    }
  }

  private async record(job: ClaimedJob, body: string, outcome: Outcome): Promise<void> {
    const error = outcome.error?.slice(0, MAX_ERROR_LENGTH) ?? null;
    const giveUp = !outcome.success && job.attempts >= this.config.webhookMaxAttempts;
    const retryInMs = backoffDelayMs(job.attempts, this.config.webhookBackoffBaseMs, this.config.webhookBackoffMaxMs);
    await this.dataSource.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO webhook_attempts (webhook_id, job_id, event_id, delivery_id, attempt, duration_ms, status_code, error, success)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [job.webhook_id, job.id, job.event_id, job.delivery_id, job.attempts, outcome.durationMs, outcome.statusCode, error, outcome.success],
      );
      await manager.query(
        `UPDATE webhook_jobs SET
           body = coalesce(body, $2),
           locked_until = NULL,
           last_error = $3,
           state = $4,
           completed_at = CASE WHEN $4 = 'pending' THEN NULL ELSE now() END,
           next_attempt_at = CASE WHEN $4 = 'pending' THEN now() + make_interval(secs => $5::double precision / 1000) ELSE next_attempt_at END
         WHERE id = $1`,
        [job.id, body, error, outcome.success ? 'delivered' : giveUp ? 'failed' : 'pending', retryInMs],
      );
    });
    if (giveUp) {
      // The URL's origin only: a path or query may hold a token. The secret is never logged.
      this.logger.warn(`webhook ${job.webhook_id} (${originOf(job.url)}): gave up on event ${job.event_id} after ${job.attempts} attempts: ${error}`);
    }
  }
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid URL';
  }
}
