import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type EventDetail = Record<string, string | number | boolean | null>;

export const DELIVERY_EVENT_TYPES = [
  'issued',
  'sent',
  'failed',
  'confirmed',
  'refused',
  'expired',
  'reissued',
  'distributed',
  'withdrawn',
  'distribution.completed',
  'recipient.overdue',
] as const;
/**
 * Issue 15: `distributed` (delivery_id null, one per distribution: its pending deliveries were written),
 * `withdrawn` (one per cancelled distribution, delivery_id null), `distribution.completed` (delivery_id null)
 * and `recipient.overdue` (one per overdue delivery); the detail names the distribution.
 */
/** `reissued` is recorded on the old delivery when a new one replaces it (its detail names the new one). */
export type DeliveryEventType = (typeof DELIVERY_EVENT_TYPES)[number];

/** The audit trail: every transition and every refused confirmation. */
@Entity('delivery_events')
export class DeliveryEvent {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  /** null for a refusal that named no known delivery (the claimed id is in detail). */
  @Column('uuid', { name: 'delivery_id', nullable: true })
  deliveryId: string | null;

  @Column('text')
  type: DeliveryEventType;

  @Column('text', { nullable: true })
  reason: string | null;

  @Column('text', { name: 'remote_address', nullable: true })
  remoteAddress: string | null;

  @Column('timestamptz', { default: () => 'now()' })
  at: Date;

  @Column('jsonb', { nullable: true })
  detail: EventDetail | null;
}
