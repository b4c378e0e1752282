import { DeliveryEvent } from '../delivery-event.entity.js';
import { Delivery, DeliveryStatus } from '../delivery.entity.js';

/** What the admin API shows of a delivery: never the confirmation key, nor the stored content's internals. */
export interface DeliveryView {
  id: string;
  contentId: string;
  contentName: string | null;
  status: DeliveryStatus;
  clientFingerprint: string | null;
  requesterIp: string;
  keyId: string;
  issuedAt: Date;
  expiresAt: Date;
  sentAt: Date | null;
  confirmedAt: Date | null;
  failedAt: Date | null;
  expiredAt: Date | null;
  /** The delivery this one re-issued. */
  reissuedFrom: string | null;
  bytesSent: number;
  confirmedFrom: string | null;
}

export interface DeliveryDetailView extends DeliveryView {
  /** Base64 of the server-signed receipt, once confirmed. */
  receipt: string | null;
  events: Pick<DeliveryEvent, 'id' | 'type' | 'reason' | 'remoteAddress' | 'at' | 'detail'>[];
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
    bytesSent: delivery.bytesSent,
    confirmedFrom: delivery.confirmedFrom,
  };
}
