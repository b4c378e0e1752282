import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { Observable, Subject } from 'rxjs';
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

/**
 * In-process stream of audit-trail events, published only after their transaction committed, so a
 * subscriber never sees an event that was rolled back (see UnitOfWork). Replicas each see their own events.
 */
@Injectable()
export class DeliveryEventsBus implements OnModuleDestroy {
  private readonly subject = new Subject<RecordedEvent>();
  readonly events$: Observable<RecordedEvent> = this.subject.asObservable();

  /** Publishes committed events, in order: only a UnitOfWork calls it, once their work committed. */
  publish(events: RecordedEvent[]): void {
    for (const event of events) this.subject.next(event);
  }

  onModuleDestroy(): void {
    this.subject.complete();
  }
}
