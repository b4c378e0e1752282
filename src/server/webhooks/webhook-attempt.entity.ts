import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** One POST of one event to one webhook, whatever came of it. */
@Entity('webhook_attempts')
export class WebhookAttempt {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column('uuid', { name: 'webhook_id' })
  webhookId: string;

  @Column('bigint', { name: 'job_id' })
  jobId: string;

  @Column('bigint', { name: 'event_id' })
  eventId: string;

  @Column('uuid', { name: 'delivery_id', nullable: true })
  deliveryId: string | null;

  /** 1 for the first POST of this event to this webhook. */
  @Column('integer')
  attempt: number;

  @Column('timestamptz')
  at: Date;

  @Column('integer', { name: 'duration_ms' })
  durationMs: number;

  /** The receiver's HTTP status; null when there was none (timeout, refused connection). */
  @Column('integer', { name: 'status_code', nullable: true })
  statusCode: number | null;

  @Column('text', { nullable: true })
  error: string | null;

  @Column('boolean')
  success: boolean;
}
