import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Subscription } from 'rxjs';
import { ConfirmationListener } from '../confirmation/confirmation.listener.js';
import { DeliveryEventRepository } from '../deliveries/delivery-event.repository.js';
import { DeliveryEventsBus, type RecordedEvent } from '../deliveries/delivery-events.bus.js';
import { DeliveryRepository } from '../deliveries/delivery.repository.js';
import { DELIVERY_STATUSES } from '../deliveries/delivery.entity.js';
import { TickBatch } from '../common/tick-batch.js';

/** Seconds from a bundle's last byte to its confirmation: a download, a save, a digest and a TCP round trip. */
const SENT_TO_CONFIRMED_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400];
/** Seconds to answer one confirmation frame: a transaction with a row lock and a signature. */
const PROCESSING_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The Prometheus metrics of this process, in a registry of its own (GET /metrics).
 * Deliveries by status are read from the database at scrape time, so they are right after a restart
 * and the same on every replica; the counters and histograms count what this replica saw on the
 * delivery events bus and its confirmation port since it started (sum them across replicas).
 */
@Injectable()
export class MetricsService implements OnModuleDestroy {
  private readonly logger = new Logger(MetricsService.name);
  readonly registry = new Registry();
  private readonly subscriptions: Subscription[];

  private readonly bytesSent = new Counter({
    name: 'dcx_bundle_bytes_sent_total',
    help: 'Bundle bytes sent by responses that completed (sent) or cut off (failed) a delivery, as recorded in the audit trail',
    registers: [this.registry],
  });

  private readonly refused = new Counter({
    name: 'dcx_confirmations_refused_total',
    help: 'Confirmations refused, by reason (seal_invalid, client_mismatch, digest_mismatch, unknown, expired, malformed, ...)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly latency = new Histogram({
    name: 'dcx_confirmation_latency_seconds',
    help: 'Time from a delivery being sent (its last bundle byte left) to its confirmation, by the database clock',
    buckets: SENT_TO_CONFIRMED_BUCKETS,
    registers: [this.registry],
  });

  private readonly processing = new Histogram({
    name: 'dcx_confirmation_processing_seconds',
    help: 'Time the TCP confirmation receiver took to check, record and answer one confirmation frame, by answer status',
    labelNames: ['status'] as const,
    buckets: PROCESSING_BUCKETS,
    registers: [this.registry],
  });

  /** The "confirmed" event of each delivery asked for in one turn of the event loop: one query for all. */
  private readonly confirmedEvents = new TickBatch<string, { at: Date } | undefined>(async (deliveryIds) => {
    const found = await this.auditTrail.findFirstConfirmed(deliveryIds);
    return deliveryIds.map((id) => found.get(id));
  });

  constructor(
    private readonly auditTrail: DeliveryEventRepository,
    deliveries: DeliveryRepository,
    events: DeliveryEventsBus,
    listener: ConfirmationListener,
  ) {
    collectDefaultMetrics({ register: this.registry });
    const logger = this.logger;
    new Gauge({
      name: 'dcx_deliveries',
      help: 'Deliveries by status, counted in the database at scrape time (all replicas, all time)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          const counts = await deliveries.countByStatus();
          for (const status of DELIVERY_STATUSES) this.set({ status }, 0);
          for (const { status, count } of counts) this.set({ status }, count);
        } catch (error) {
          // The scrape still answers (process metrics, counters); the missing series says the database did not.
          logger.warn(`dcx_deliveries not collected: ${(error as Error).message}`);
        }
      },
    });
    new Gauge({
      name: 'dcx_distribution_recipients',
      help: "Recipients' current deliveries of distributions by status (and overdue), counted in the database at scrape time",
      labelNames: ['status'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          for (const status of [...DELIVERY_STATUSES, 'overdue']) this.set({ status }, 0);
          for (const { status, count } of await deliveries.countDistributionRecipients()) this.set({ status }, count);
        } catch (error) {
          logger.warn(`dcx_distribution_recipients not collected: ${(error as Error).message}`);
        }
      },
    });
    this.subscriptions = [
      events.events$.subscribe((event) => this.onEvent(event)),
      listener.processed$.subscribe(({ status, seconds }) => this.processing.observe({ status }, seconds)),
    ];
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  onModuleDestroy(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  private onEvent(event: RecordedEvent): void {
    switch (event.type) {
      case 'sent':
      case 'failed': {
        const bytes = event.detail?.bytesSent;
        if (typeof bytes === 'number' && bytes > 0) this.bytesSent.inc(bytes);
        // A "sent" is the second of its pair only when a confirmation overtook it (the delivery is then
        // still confirmed); otherwise its confirmation, if one comes, takes the sample. So the usual
        // "sent" costs no query.
        if (event.type === 'sent' && event.status === 'confirmed') void this.observeOvertaken(event);
        break;
      }
      case 'refused':
        this.refused.inc({ reason: event.reason ?? 'unknown' });
        break;
      case 'confirmed':
        // Its recorder read the delivery's sent_at (the first "sent" event's time) and wrote only if the status
        // it read was unchanged. Not sent yet (null): the "sent" to come takes the sample.
        if (event.sentAt) this.latency.observe(Math.max(0, (event.at.getTime() - event.sentAt.getTime()) / 1000));
        break;
      default:
        break;
    }
  }

  /**
   * One sample per confirmed delivery, taken by whichever of its "sent" and "confirmed" events came second
   * (a confirmation can overtake the server's record of the last byte): here a "sent" recorded after its
   * delivery's confirmation, whose time comes from the audit trail (it may have been recorded by another replica).
   */
  private async observeOvertaken(sent: RecordedEvent): Promise<void> {
    if (sent.deliveryId === null) return;
    try {
      const confirmed = await this.confirmedEvents.get(sent.deliveryId);
      if (confirmed === undefined) return;
      this.latency.observe(Math.max(0, (new Date(confirmed.at).getTime() - sent.at.getTime()) / 1000));
    } catch (error) {
      this.logger.warn(`confirmation latency of ${sent.deliveryId} not observed: ${(error as Error).message}`);
    }
  }
}
