import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { WEBHOOK_OUTBOX_CTE } from '../webhooks/webhook-job.repository.js';
import { DeliveryEvent, DeliveryEventType } from './delivery-event.entity.js';
import type { EventInput, RecordedEvent } from './delivery-events.bus.js';
import type { DeliveryStatus } from './delivery.entity.js';
import type { Work } from './unit-of-work.js';

/** The delivery's status after an event of each type; null for those that change none (or name no delivery). */
export const STATUS_AFTER: Record<DeliveryEventType, DeliveryStatus | null> = {
  issued: 'issued',
  sent: 'sent',
  failed: 'failed',
  confirmed: 'confirmed',
  expired: 'expired',
  refused: null,
  reissued: null,
  distributed: null,
  withdrawn: null,
  'distribution.completed': null,
  'recipient.overdue': null,
};

/**
 * The common table expressions that append events to the audit trail and, in the same statement, the
 * webhook outbox rows of the webhooks module. `source` is a query of (delivery_id, type, reason,
 * remote_address, detail) rows in event order; the inserted events are the CTE `event` (id, at,
 * delivery_id, type, detail). For repositories that write a table and its events in one statement.
 */
export function eventCtes(source: string): string {
  return `event AS (
    INSERT INTO delivery_events (delivery_id, type, reason, remote_address, detail)
    ${source}
    RETURNING id, at, delivery_id, type, detail
  ), ${WEBHOOK_OUTBOX_CTE}`;
}

/** `eventCtes` of events given as the parameters `$first` … `$first + 4` (see `eventParameters`). */
export function eventCtesOfParameters(first: number): string {
  const [a, b, c, d, e] = [first, first + 1, first + 2, first + 3, first + 4];
  return eventCtes(`SELECT * FROM unnest($${a}::uuid[], $${b}::text[], $${c}::text[], $${d}::text[], $${e}::jsonb[])`);
}

/** The five parameters of `eventCtesOfParameters`, in order. */
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
    id: String(rows[i].id),
    deliveryId: event.deliveryId,
    type: event.type,
    status: event.status !== undefined ? event.status : STATUS_AFTER[event.type],
    reason: event.reason ?? null,
    remoteAddress: event.remoteAddress ?? null,
    at: rows[i].at,
    detail: event.detail ?? null,
    sentAt: event.sentAt,
  }));
}

/** One statement for any number of events: one round trip however many events. */
const INSERT_EVENTS_SQL = `WITH ${eventCtesOfParameters(1)} SELECT id, at FROM event ORDER BY id`;

const FIRST_CONFIRMED_SQL = `SELECT k.delivery_id, e.at
         FROM unnest($1::uuid[]) AS k(delivery_id)
        CROSS JOIN LATERAL (SELECT at FROM delivery_events WHERE delivery_id = k.delivery_id AND type = 'confirmed' ORDER BY id LIMIT 1) e`;

/** [872] The audit trail (delivery_events): appended within a unit of work, read by the manager views. */
@Injectable()
export class DeliveryEventRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Appends `events` (and their webhook outbox rows) in one statement of `work`. */
  async append(work: Work, events: EventInput[]): Promise<RecordedEvent[]> {
    const rows = await work.manager.query<{ id: string; at: Date }[]>(INSERT_EVENTS_SQL, eventParameters(events));
    return work.recorded(recordedEvents(events, rows));
  }

  /** A delivery's events, oldest first. */
  findByDelivery(deliveryId: string): Promise<DeliveryEvent[]> {
    return this.dataSource.getRepository(DeliveryEvent).find({ where: { deliveryId }, order: { id: 'ASC' } });
  }

  /** Of each delivery, the time of its (first) "confirmed" event, if it has one: one query for all. */
  async findFirstConfirmed(deliveryIds: string[]): Promise<Map<string, { at: Date }>> {
    const rows = await this.dataSource.query<{ delivery_id: string; at: Date }[]>(FIRST_CONFIRMED_SQL, [deliveryIds]);
    return new Map(rows.map((row) => [row.delivery_id, row]));
  }

  findById(id: string): Promise<DeliveryEvent> {
    return this.dataSource.getRepository(DeliveryEvent).findOneByOrFail({ id });
  }
}
