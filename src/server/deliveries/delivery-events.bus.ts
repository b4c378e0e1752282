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
  /** Of a "confirmed" event: the delivery's sent_at as the confirming transaction saw it (null: not sent yet). */
  sentAt?: Date | null;
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
  /**
   * Of a "confirmed" event: the delivery's sent_at, which is the time of its first "sent" event (null: not
   * sent yet). Not part of the audit trail.
   */
  sentAt?: Date | null;
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
  /**
   * Runs `sql`, a statement whose CTEs end with `eventCtesOfParameters(params.length + 1)` and whose
   * query returns the `event` rows' (id, at) sorted by id, with `events` as those parameters; the
   * events are published after commit like `record`'s.
   */
  writeEvents(sql: string, params: unknown[], events: EventInput[]): Promise<RecordedEvent[]>;
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
        writeEvents: async (sql, params, events) => {
          const rows = recordedEvents(events, (await transactionManager.query(sql, [...params, ...eventParameters(events)])) as { id: string; at: Date }[]);
          recorded.push(...rows);
          return rows;
        },
      }),
    );
    for (const event of recorded) this.subject.next(event);
    return result;
  }

  /**
   * Publishes events that a single autocommit statement (see `eventCtes`) has recorded: call it only
   * once that statement returned, i.e. committed.
   */
  publishCommitted(events: RecordedEvent[]): void {
    for (const event of events) this.subject.next(event);
  }

  onModuleDestroy(): void {
    this.subject.complete();
  }
}

/**
 * The common table expressions that append events to the audit trail and, in the same statement (the
 * webhook outbox), one webhook_jobs row per event and active webhook subscribed to its type, in event
 * order. `source` is a query of (delivery_id, type, reason, remote_address, detail) rows in event order;
 * the inserted events are the CTE `event` (id, at, delivery_id, type). With no webhooks the jobs insert
 * selects nothing.
 */
export function eventCtes(source: string): string {
  return `event AS (
    INSERT INTO delivery_events (delivery_id, type, reason, remote_address, detail)
    ${source}
    RETURNING id, at, delivery_id, type
  ), jobs AS (
    INSERT INTO webhook_jobs (webhook_id, event_id, delivery_id)
    SELECT w.id, event.id, event.delivery_id FROM event JOIN webhooks w ON w.active AND (w.events IS NULL OR event.type = ANY (w.events))
    ORDER BY event.id, w.id
  )`;
}

/** `eventCtes` of events given as the parameters `$first` … `$first + 4` (see `eventParameters`). */
export function eventCtesOfParameters(first: number): string {
  const [a, b, c, d, e] = [first, first + 1, first + 2, first + 3, first + 4];
  return eventCtes(`SELECT * FROM unnest($${a}::uuid[], $${b}::text[], $${c}::text[], $${d}::text[], $${e}::jsonb[])`);
}

/** The five parameters of `eventCtes`, in order. */
export function eventParameters(events: EventInput[]): unknown[] {
  return [
    events.map((event) => event.deliveryId),
    events.map((event) => event.type),
    events.map((event) => event.reason ?? null),
    events.map((event) => event.remoteAddress ?? null),
    events.map((event) => (event.detail ? JSON.stringify(event.detail) : null)),
  ];
}

/** The recorded events, given the (id, at) rows of CTE `event` sorted by id. */
export function recordedEvents(events: EventInput[], rows: { id: string | number; at: Date }[]): RecordedEvent[] {
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
    sentAt: event.sentAt,
  }));
}

/** One statement for any number of events: one round trip however many events. */
const INSERT_EVENTS_SQL = `WITH ${eventCtesOfParameters(1)} SELECT id, at FROM event ORDER BY id`;

async function insertEvents(manager: EntityManager, events: EventInput[]): Promise<RecordedEvent[]> {
  const rows = (await manager.query(INSERT_EVENTS_SQL, eventParameters(events))) as { id: string; at: Date }[];
  return recordedEvents(events, rows);
}
