import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { EntityManager } from 'typeorm';
import type { DeliveryEventType, EventDetail } from './delivery-event.entity.js';
import type { DeliveryStatus } from './delivery.entity.js';

export interface EventInput {
  deliveryId: string | null;
  type: DeliveryEventType;
  reason?: string | null;
  remoteAddress?: string | null;
  detail?: EventDetail | null;
}

/** One committed row of the audit trail, as subscribers (dashboard, webhooks, metrics) see it. */
export interface RecordedEvent {
  id: string;
  deliveryId: string | null;
  type: DeliveryEventType;
  /** The delivery's status after this event; null for a refusal, which changes no status. */
  status: DeliveryStatus | null;
  reason: string | null;
  remoteAddress: string | null;
  at: Date;
  detail: EventDetail | null;
}

const STATUS_AFTER: Record<DeliveryEventType, DeliveryStatus | null> = {
  issued: 'issued',
  sent: 'sent',
  failed: 'failed',
  confirmed: 'confirmed',
  expired: 'expired',
  refused: null,
  reissued: null,
};

/** A database transaction that appends to the audit trail; its events are published once it commits. */
export interface RecordingTransaction {
  readonly manager: EntityManager;
  record(event: EventInput): Promise<RecordedEvent>;
}

/**
 * In-process stream of audit-trail events, published only after their transaction committed, so a
 * subscriber never sees an event that was rolled back. Replicas each see their own events.
 */
@Injectable()
export class DeliveryEventsBus implements OnModuleDestroy {
  private readonly subject = new Subject<RecordedEvent>();
  readonly events$: Observable<RecordedEvent> = this.subject.asObservable();

  /** Runs `work` in a transaction of `manager`'s data source; publishes what it recorded after commit. */
  async transaction<T>(manager: EntityManager, work: (tx: RecordingTransaction) => Promise<T>): Promise<T> {
    const recorded: RecordedEvent[] = [];
    const result = await manager.transaction((transactionManager) =>
      work({
        manager: transactionManager,
        record: async (event) => {
          const row = await insertEvent(transactionManager, event);
          recorded.push(row);
          return row;
        },
      }),
    );
    for (const event of recorded) this.subject.next(event);
    return result;
  }

  onModuleDestroy(): void {
    this.subject.complete();
  }
}

/**
 * One statement per event: the audit-trail row and, in the same transaction (the webhook outbox),
 * one webhook_jobs row per active webhook that subscribes to this event type. With no webhooks the
 * second insert selects nothing; the confirmation path stays one round trip per event.
 */
const INSERT_EVENT_SQL = `
  WITH event AS (
    INSERT INTO delivery_events (delivery_id, type, reason, remote_address, detail)
    VALUES ($1, $2, $3, $4, $5)
    RETURNING id, at
  ), jobs AS (
    INSERT INTO webhook_jobs (webhook_id, event_id, delivery_id)
    SELECT w.id, event.id, $1::uuid FROM webhooks w CROSS JOIN event
    WHERE w.active AND (w.events IS NULL OR $2 = ANY (w.events))
  )
  SELECT id, at FROM event`;

async function insertEvent(manager: EntityManager, event: EventInput): Promise<RecordedEvent> {
  const values = {
    deliveryId: event.deliveryId,
    type: event.type,
    reason: event.reason ?? null,
    remoteAddress: event.remoteAddress ?? null,
    detail: event.detail ?? null,
  };
  const rows = (await manager.query(INSERT_EVENT_SQL, [
    values.deliveryId,
    values.type,
    values.reason,
    values.remoteAddress,
    values.detail === null ? null : JSON.stringify(values.detail),
  ])) as { id: string; at: Date }[];
  const generated = rows[0];
  return { ...values, id: String(generated.id), at: generated.at, status: STATUS_AFTER[event.type] };
}
