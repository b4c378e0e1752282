import { ApiProperty } from '@nestjs/swagger';
import { DELIVERY_EVENT_TYPES } from '../../deliveries/delivery-event.entity.js';
import type { DeliveryEventType } from '../../deliveries/delivery-event.entity.js';
import type { WebhookAttempt } from '../webhook-attempt.entity.js';
import type { Webhook } from '../webhook.entity.js';

/** A webhook as the API shows it: never its secret (except once, on creation). */
export class WebhookView {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ format: 'uri' })
  url: string;
  @ApiProperty({ enum: DELIVERY_EVENT_TYPES, isArray: true, nullable: true, description: 'event types sent; null: all' })
  events: DeliveryEventType[] | null;
  @ApiProperty()
  active: boolean;
  @ApiProperty()
  createdAt: Date;
}

export class CreatedWebhookView extends WebhookView {
  /** Shown this once; sign checks need it. */
  @ApiProperty({ description: 'the HMAC key, shown only in this answer' })
  secret: string;
}

/** One POST of one event to one webhook. */
export class WebhookAttemptView implements Pick<
  WebhookAttempt,
  'id' | 'jobId' | 'eventId' | 'deliveryId' | 'attempt' | 'at' | 'durationMs' | 'statusCode' | 'error' | 'success'
> {
  @ApiProperty()
  id: string;
  @ApiProperty()
  jobId: string;
  @ApiProperty()
  eventId: string;
  @ApiProperty({ type: String, nullable: true, format: 'uuid' })
  deliveryId: string | null;
  @ApiProperty({ description: '1 for the first POST of this event' })
  attempt: number;
  @ApiProperty()
  at: Date;
  @ApiProperty()
  durationMs: number;
  @ApiProperty({ type: Number, nullable: true, description: "the receiver's HTTP status; null when there was none" })
  statusCode: number | null;
  @ApiProperty({ type: String, nullable: true })
  error: string | null;
  @ApiProperty()
  success: boolean;
}

/** Events by outbox state: waiting or being retried, delivered, given up. */
export class WebhookJobCounts {
  @ApiProperty()
  pending: number;
  @ApiProperty()
  delivered: number;
  @ApiProperty()
  failed: number;
}

export class WebhookDetailView extends WebhookView {
  @ApiProperty({ type: WebhookJobCounts })
  jobs: WebhookJobCounts;
  @ApiProperty({ type: [WebhookAttemptView] })
  recentAttempts: WebhookAttemptView[];
}

export function toWebhookView(webhook: Webhook): WebhookView {
  return { id: webhook.id, url: webhook.url, events: webhook.events, active: webhook.active, createdAt: webhook.createdAt };
}

export function toAttemptView(a: WebhookAttempt): WebhookAttemptView {
  return {
    id: a.id,
    jobId: a.jobId,
    eventId: a.eventId,
    deliveryId: a.deliveryId,
    attempt: a.attempt,
    at: a.at,
    durationMs: a.durationMs,
    statusCode: a.statusCode,
    error: a.error,
    success: a.success,
  };
}
