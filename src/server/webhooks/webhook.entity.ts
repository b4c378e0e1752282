import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { DeliveryEventType } from '../deliveries/delivery-event.entity.js';

/** A URL that gets every delivery event (or the listed types) POSTed to it, signed with its secret. */
@Entity('webhooks')
export class Webhook {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column('text')
  url: string;

  /** HMAC key of the signatures. Shown once, at creation; never selected by default, never logged. */
  @Column('text', { select: false })
  secret: string;

  /** null: every event type. */
  @Column('text', { array: true, nullable: true })
  events: DeliveryEventType[] | null;

  @Column('boolean', { default: true })
  active: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
