import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
import type { EntityManager } from 'typeorm';
import { DeliveryEvent, DeliveryEventType, EventDetail } from './delivery-event.entity.js';
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
          recorded.push(row);
          return row;
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

async function insertEvents(manager: EntityManager, events: EventInput[]): Promise<RecordedEvent[]> {
  const values = events.map((event) => ({
    deliveryId: event.deliveryId,
    type: event.type,
    reason: event.reason ?? null,
    remoteAddress: event.remoteAddress ?? null,
    detail: event.detail ?? null,
  }));
  const result = await manager.createQueryBuilder().insert().into(DeliveryEvent).values(values).returning(['id', 'at']).execute();
  // PostgreSQL returns the rows of a multi-row INSERT in the order of its VALUES.
  const generated = result.raw as { id: string; at: Date }[];
  return values.map((row, i) => ({ ...row, id: String(generated[i].id), at: generated[i].at, status: STATUS_AFTER[row.type] }));
}
