import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, VirtualColumn } from 'typeorm';
import type { Relation } from 'typeorm';
import { Content } from '../contents/content.entity.js';
import { bigintToNumber } from '../database/column-transformers.js';

/**
 * `pending`: written by a distribution, not pulled yet (no seal, no confirm key); `withdrawn`: a pending
 * delivery of a cancelled distribution.
 */
export const DELIVERY_STATUSES = ['pending', 'issued', 'sent', 'confirmed', 'failed', 'expired', 'withdrawn'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** [872] One delivery: a confirmation ID issued for one content to one client. */
@Entity('deliveries')
export class Delivery {
  /** The 128-bit delivery confirmation ID. */
  @PrimaryColumn('uuid')
  id: string;

  @Column('uuid', { name: 'content_id' })
  contentId: string;

  @ManyToOne(() => Content)
  @JoinColumn({ name: 'content_id' })
  content?: Relation<Content>;

  @Column('text')
  status: DeliveryStatus;

  @Column('char', { name: 'client_fingerprint', length: 64, nullable: true })
  clientFingerprint: string | null;

  @Column('bytea', { name: 'client_key', nullable: true })
  clientKey: Buffer | null;

  /** null while pending: a distribution's delivery gets its requester when it is pulled. */
  @Column('text', { name: 'requester_ip', nullable: true })
  requesterIp: string | null;

  /** HKDF of the per-delivery secret; the secret itself is kept nowhere. Never selected by default. */
  @Column('bytea', { name: 'confirm_key', select: false, nullable: true })
  confirmKey: Buffer | null;

  @Column('text', { name: 'key_id', nullable: true })
  keyId: string | null;

  @Column('timestamptz', { name: 'issued_at' })
  issuedAt: Date;

  @Column('timestamptz', { name: 'expires_at' })
  expiresAt: Date;

  @Column('timestamptz', { name: 'sent_at', nullable: true })
  sentAt: Date | null;

  @Column('timestamptz', { name: 'confirmed_at', nullable: true })
  confirmedAt: Date | null;

  @Column('timestamptz', { name: 'failed_at', nullable: true })
  failedAt: Date | null;

  /** When the expiry sweep found it past expires_at, unconfirmed. */
  @Column('timestamptz', { name: 'expired_at', nullable: true })
  expiredAt: Date | null;

  /** The expired or failed delivery this one re-issued, if any. */
  @Column('uuid', { name: 'reissued_from', nullable: true })
  reissuedFrom: string | null;

  /**
   * The delivery that re-issued this one, if any (read only: the inverse of reissued_from, through
   * its partial index), so that the dashboard can show an old row as re-issued after a reload.
   */
  @VirtualColumn('uuid', { query: (alias) => `SELECT r.id FROM deliveries r WHERE r.reissued_from = ${alias}.id LIMIT 1` })
  reissuedAs?: string | null;

  @Column('bigint', { name: 'bytes_sent', default: 0, transformer: bigintToNumber })
  bytesSent: number;

  @Column('text', { name: 'confirmed_from', nullable: true })
  confirmedFrom: string | null;

  @Column('bytea', { nullable: true, select: false })
  receipt: Buffer | null;

  /** The distribution this delivery belongs to, if any (issue 15). */
  @Column('uuid', { name: 'distribution_id', nullable: true })
  distributionId: string | null;

  /** The named recipient it is addressed to, if any. */
  @Column('uuid', { name: 'recipient_id', nullable: true })
  recipientId: string | null;

  /** Replaced by a re-send of its distribution: no longer the recipient's current delivery. */
  @Column('boolean', { default: false })
  superseded: boolean;

  /** The sealed plug-in data as sent: the bundle of this delivery is rebuilt from it, byte for byte. */
  @Column('bytea', { name: 'plugin_data', nullable: true, select: false })
  pluginData: Buffer | null;
}
