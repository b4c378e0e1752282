import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Subscription } from 'rxjs';
import { AppConfig } from '../config/app-config.js';
import { DeliveryEventRepository, STATUS_AFTER } from '../deliveries/delivery-event.repository.js';
import { DeliveryEventsBus } from '../deliveries/delivery-events.bus.js';
import { DeliveryRepository } from '../deliveries/delivery.repository.js';
import { toDeliveryView } from '../deliveries/dto/delivery.view.js';
import { backoffDelayMs } from './backoff.js';
import { AttemptOutcome, ClaimedJob, WebhookJobRepository } from './webhook-job.repository.js';
import { SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './webhook-signature.js';

const POLL_NAME = 'webhook-dispatch';
/** A claimed job is held this much longer than a POST may take; a crashed worker's jobs come back after it. */
const LEASE_MARGIN_MS = 30_000;
const MAX_ERROR_LENGTH = 500;

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
    private readonly jobs: WebhookJobRepository,
    private readonly events: DeliveryEventRepository,
    private readonly deliveries: DeliveryRepository,
    private readonly config: AppConfig,
    private readonly bus: DeliveryEventsBus,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.refreshWebhookCount();
    this.subscription = this.bus.events$.subscribe(() => {
      if (this.webhookCount > 0) this.kick();
    });
    this.scheduler.addInterval(
      POLL_NAME,
      setInterval(() => void this.poll(), this.config.webhookPollIntervalMs),
    );
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
    this.webhookCount = await this.jobs.countActiveWebhooks();
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
        jobs = await this.jobs.claim(free, this.config.webhookTimeoutMs + LEASE_MARGIN_MS);
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
    const event = await this.events.findById(job.event_id);
    const delivery = event.deliveryId ? await this.deliveries.findOne(event.deliveryId, { content: true }) : null;
    const refused = event.type === 'refused';
    return JSON.stringify({
      id: String(event.id),
      deliveryId: event.deliveryId,
      type: event.type,
      refused,
      status: STATUS_AFTER[event.type],
      reason: event.reason,
      remoteAddress: event.remoteAddress,
      at: event.at,
      detail: event.detail,
      delivery: delivery ? toDeliveryView(delivery) : null,
    });
  }

  private async post(job: ClaimedJob, body: string): Promise<AttemptOutcome> {
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
      const reason = name === 'TimeoutError' ? `no answer within ${this.config.webhookTimeoutMs} ms` : networkReason(error);
      return { success: false, statusCode: null, error: reason, durationMs: elapsed() };
    }
  }

  private async record(job: ClaimedJob, body: string, outcome: AttemptOutcome): Promise<void> {
    const error = outcome.error?.slice(0, MAX_ERROR_LENGTH) ?? null;
    const giveUp = !outcome.success && job.attempts >= this.config.webhookMaxAttempts;
    const retryInMs = backoffDelayMs(job.attempts, this.config.webhookBackoffBaseMs, this.config.webhookBackoffMaxMs);
    const state = outcome.success ? 'delivered' : giveUp ? 'failed' : 'pending';
    await this.jobs.recordAttempt(job, body, { ...outcome, error }, state, retryInMs);
    if (giveUp) {
      // The URL's origin only: a path or query may hold a token. The secret is never logged.
      this.logger.warn(
        `webhook ${job.webhook_id} (${originOf(job.url)}): gave up on event ${job.event_id} after ${job.attempts} attempts: ${error}`,
      );
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
