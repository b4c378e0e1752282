import { ApiProperty } from '@nestjs/swagger';
import { DELIVERY_EVENT_TYPES } from '../delivery-event.entity.js';
import type { DeliveryEventType, EventDetail } from '../delivery-event.entity.js';
import { Delivery, DELIVERY_STATUSES } from '../delivery.entity.js';
import type { DeliveryStatus } from '../delivery.entity.js';

/** What the admin API shows of a delivery: never the confirmation key, nor the stored content's internals. */
export class DeliveryView {
  @ApiProperty({ format: 'uuid', description: 'the delivery confirmation ID' })
  id: string;
  @ApiProperty({ format: 'uuid' })
  contentId: string;
  @ApiProperty({ type: String, nullable: true })
  contentName: string | null;
  @ApiProperty({ enum: DELIVERY_STATUSES })
  status: DeliveryStatus;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 (hex) of the client key the plug-in data was sealed to' })
  clientFingerprint: string | null;
  @ApiProperty({ type: String, nullable: true, description: "null while a distribution's delivery is pending (not pulled)" })
  requesterIp: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'server key that signed the plug-in data (null while pending)' })
  keyId: string | null;
  @ApiProperty()
  issuedAt: Date;
  @ApiProperty()
  expiresAt: Date;
  @ApiProperty({ type: Date, nullable: true })
  sentAt: Date | null;
  @ApiProperty({ type: Date, nullable: true })
  confirmedAt: Date | null;
  @ApiProperty({ type: Date, nullable: true })
  failedAt: Date | null;
  @ApiProperty({ type: Date, nullable: true })
  expiredAt: Date | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', description: 'the delivery this one re-issued' })
  reissuedFrom: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'uuid', description: 'the delivery that re-issued this one' })
  reissuedAs: string | null;
  @ApiProperty()
  bytesSent: number;
  @ApiProperty({ type: String, nullable: true })
  confirmedFrom: string | null;
}

/** One audit-trail event of a delivery. */
export class DeliveryEventView {
  @ApiProperty()
  id: string;
  @ApiProperty({ enum: DELIVERY_EVENT_TYPES })
  type: DeliveryEventType;
  @ApiProperty({ type: String, nullable: true, description: 'why a confirmation was refused or a download failed' })
  reason: string | null;
  @ApiProperty({ type: String, nullable: true })
  remoteAddress: string | null;
  @ApiProperty()
  at: Date;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  detail: EventDetail | null;
}

export class DeliveryDetailView extends DeliveryView {
  /** Base64 of the server-signed receipt, once confirmed. */
  @ApiProperty({ type: String, nullable: true, description: 'base64 of the server-signed receipt, once confirmed' })
  receipt: string | null;
  @ApiProperty({ type: [DeliveryEventView] })
  events: DeliveryEventView[];
}

/** A page of deliveries, newest first. */
export class DeliveryPageView {
  @ApiProperty({ type: [DeliveryView] })
  items: DeliveryView[];
  @ApiProperty()
  total: number;
  @ApiProperty()
  page: number;
  @ApiProperty()
  pageSize: number;
}

export function toDeliveryView(delivery: Delivery): DeliveryView {
  return {
    id: delivery.id,
    contentId: delivery.contentId,
    contentName: delivery.content?.name ?? null,
    status: delivery.status,
    clientFingerprint: delivery.clientFingerprint,
    requesterIp: delivery.requesterIp,
    keyId: delivery.keyId,
    issuedAt: delivery.issuedAt,
    expiresAt: delivery.expiresAt,
    sentAt: delivery.sentAt,
    confirmedAt: delivery.confirmedAt,
    failedAt: delivery.failedAt,
    expiredAt: delivery.expiredAt,
    reissuedFrom: delivery.reissuedFrom,
    reissuedAs: delivery.reissuedAs ?? null,
    bytesSent: delivery.bytesSent,
    confirmedFrom: delivery.confirmedFrom,
  };
}
