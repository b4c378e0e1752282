import { Injectable, type MessageEvent } from '@nestjs/common';
import { endWith, ignoreElements, interval, map, merge, share, takeUntil, type Observable } from 'rxjs';
import { DeliveryEventsBus, type RecordedEvent } from '../deliveries/delivery-events.bus.js';

/** Every 15 s a comment line keeps proxies and load balancers from closing an idle stream. */
export const HEARTBEAT_MS = 15_000;

/** What the dashboard receives for each committed audit-trail event (SSE type `delivery`). */
export interface DeliveryEventMessage {
  id: string;
  deliveryId: string | null;
  type: RecordedEvent['type'];
  status: RecordedEvent['status'];
  reason: string | null;
  at: string;
}

/** The audit trail as server-sent events, with heartbeats; ends when the bus completes (shutdown), so open streams do not hold the server up. */
@Injectable()
export class DeliveryStreamService {
  constructor(private readonly bus: DeliveryEventsBus) {}

  stream(heartbeatMs: number = HEARTBEAT_MS): Observable<MessageEvent> {
    const events = this.bus.events$.pipe(
      map((event): MessageEvent => ({ id: event.id, type: 'delivery', data: toMessage(event) })),
      share(),
    );
    const ended = events.pipe(ignoreElements(), endWith(true));
    const heartbeats = interval(heartbeatMs).pipe(
      map((): MessageEvent => ({ comment: 'heartbeat' })),
      takeUntil(ended),
    );
    return merge(events, heartbeats);
  }
}

function toMessage(event: RecordedEvent): DeliveryEventMessage {
  return {
    id: event.id,
    deliveryId: event.deliveryId,
    type: event.type,
    status: event.status,
    reason: event.reason,
    at: new Date(event.at).toISOString(),
  };
}
