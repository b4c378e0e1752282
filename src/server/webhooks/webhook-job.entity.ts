import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type WebhookJobState = 'pending' | 'delivered' | 'failed';

/**
 * The outbox: one row per (webhook, event), inserted in the transaction that recorded the event,
 * so no committed event is lost and no rolled-back one is sent. `failed`: gave up after the last attempt.
 */
@Entity('webhook_jobs')
export class WebhookJob {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column('uuid', { name: 'webhook_id' })
  webhookId: string;

  @Column('bigint', { name: 'event_id' })
  eventId: string;

  @Column('uuid', { name: 'delivery_id', nullable: true })
  deliveryId: string | null;

  @Column('text')
  state: WebhookJobState;

  @Column('integer')
  attempts: number;

  @Column('timestamptz', { name: 'next_attempt_at' })
  nextAttemptAt: Date;

  /** A worker holds the job until then (its POST is in flight); afterwards any worker may take it again. */
  @Column('timestamptz', { name: 'locked_until', nullable: true })
  lockedUntil: Date | null;

  /** The JSON body, fixed at the first attempt so every retry sends (and signs) the same bytes. */
  @Column('text', { nullable: true, select: false })
  body: string | null;

  @Column('text', { name: 'last_error', nullable: true })
  lastError: string | null;

  @Column('timestamptz', { name: 'created_at' })
  createdAt: Date;

  @Column('timestamptz', { name: 'completed_at', nullable: true })
  completedAt: Date | null;
}
