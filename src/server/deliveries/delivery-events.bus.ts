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
  /** The delivery's status after this event, when it is not the one the event type implies (a late "sent"). */
  status?: DeliveryStatus | null;
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
  /** Several events in one statement (batched writes); published after commit like `record`'s. */
  recordMany(events: EventInput[]): Promise<RecordedEvent[]>;
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
          const [row] = await insertEvents(transactionManager, [event]);
          recorded.push(row!);
          return row!;
        },
        recordMany: async (events) => {
          const rows = events.length > 0 ? await insertEvents(transactionManager, events) : [];
          recorded.push(...rows);
          return rows;
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
 * One statement for any number of events: the audit-trail rows and, in the same transaction (the
 * webhook outbox), one webhook_jobs row per event and active webhook subscribed to its type, in event
 * order. With no webhooks the second insert selects nothing: one round trip however many events.
 */
const INSERT_EVENTS_SQL = `
  WITH event AS (
    INSERT INTO delivery_events (delivery_id, type, reason, remote_address, detail)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
    RETURNING id, at, delivery_id, type
  ), jobs AS (
    INSERT INTO webhook_jobs (webhook_id, event_id, delivery_id)
    SELECT w.id, event.id, event.delivery_id FROM event JOIN webhooks w ON w.active AND (w.events IS NULL OR event.type = ANY (w.events))
    ORDER BY event.id, w.id
  )
  SELECT id, at FROM event ORDER BY id`;

async function insertEvents(manager: EntityManager, events: EventInput[]): Promise<RecordedEvent[]> {
  const rows = (await manager.query(INSERT_EVENTS_SQL, [
    events.map((event) => event.deliveryId),
    events.map((event) => event.type),
    events.map((event) => event.reason ?? null),
    events.map((event) => event.remoteAddress ?? null),
    events.map((event) => (event.detail ? JSON.stringify(event.detail) : null)),
  ])) as { id: string; at: Date }[];
  // Ids come from one sequence in the order unnest produced the rows: sorted by id, they follow `events`.
  return events.map((event, i) => ({
    id: String(rows[i]!.id),
    deliveryId: event.deliveryId,
    type: event.type,
    status: event.status !== undefined ? event.status : STATUS_AFTER[event.type],
    reason: event.reason ?? null,
    remoteAddress: event.remoteAddress ?? null,
    at: rows[i]!.at,
    detail: event.detail ?? null,
  }));
}
