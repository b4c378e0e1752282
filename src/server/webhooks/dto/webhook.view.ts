import type { DeliveryEventType } from '../../deliveries/delivery-event.entity.js';
import type { WebhookAttempt } from '../webhook-attempt.entity.js';
import type { Webhook } from '../webhook.entity.js';

/** A webhook as the API shows it: never its secret (except once, on creation). */
export interface WebhookView {
  id: string;
  url: string;
  events: DeliveryEventType[] | null;
  active: boolean;
  createdAt: Date;
}

export interface CreatedWebhookView extends WebhookView {
  /** Shown this once; sign checks need it. */
  secret: string;
}

export type WebhookAttemptView = Pick<WebhookAttempt, 'id' | 'jobId' | 'eventId' | 'deliveryId' | 'attempt' | 'at' | 'durationMs' | 'statusCode' | 'error' | 'success'>;

export interface WebhookDetailView extends WebhookView {
  /** Events by outbox state: waiting or being retried, delivered, given up. */
  jobs: { pending: number; delivered: number; failed: number };
  recentAttempts: WebhookAttemptView[];
}

export function toWebhookView(webhook: Webhook): WebhookView {
  return { id: webhook.id, url: webhook.url, events: webhook.events, active: webhook.active, createdAt: webhook.createdAt };
}

export function toAttemptView(a: WebhookAttempt): WebhookAttemptView {
  return { id: a.id, jobId: a.jobId, eventId: a.eventId, deliveryId: a.deliveryId, attempt: a.attempt, at: a.at, durationMs: a.durationMs, statusCode: a.statusCode, error: a.error, success: a.success };
}
