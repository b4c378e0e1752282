import { SECRET_SIZE } from '../../protocol/constants.js';
import { deriveConfirmKey } from '../../protocol/confirmation.js';
import { newDeliveryId } from '../../protocol/delivery-id.js';
import { fingerprint } from '../../protocol/keys.js';
import type { PluginData, PluginSealRequest } from '../../protocol/plugin-data.js';
import { secureRandomBytes } from '../../protocol/random.js';
import type { AppConfig } from '../config/app-config.js';
import type { Content } from '../contents/content.entity.js';
import type { EventInput } from './delivery-events.bus.js';
import type { Delivery } from './delivery.entity.js';

export interface Requester {
  /** The requester's IP as the server saw it: client information in anonymous mode. */
  address: string;
  /** Raw X25519 key from DCX-Client-Key: the plug-in data is then sealed to it. */
  clientKey: Buffer | null;
}

/** A new delivery whose plug-in data is not sealed yet: the row without it and what to seal. */
export interface PreparedDelivery {
  delivery: Omit<Delivery, 'keyId' | 'pluginData'>;
  plugin: PluginSealRequest;
}

/** A distribution's pending delivery being sealed on its first pull: its ID was issued when it was written. */
export interface PendingDeliveryRef {
  id: string;
  distributionId: string;
  recipientId: string;
}

/**
 * [871] + [88] The row of a new delivery of `content` to `requester` and its plug-in data, to be sealed (nothing
 * stored yet); with `pending`, the seal of that pending delivery (same ID, a fresh secret).
 */
export function newDelivery(
  content: Content,
  requester: Requester,
  reissuedFrom: string | null,
  config: Pick<AppConfig, 'deliveryTtlMs' | 'publicHost' | 'confirmPort' | 'publicUrl'>,
  pending: PendingDeliveryRef | null = null,
): PreparedDelivery {
  const issuedAt = new Date();
  const expiresAt = new Date(issuedAt.getTime() + config.deliveryTtlMs);
  const confirmSecret = secureRandomBytes(SECRET_SIZE);
  const clientFingerprint = requester.clientKey ? fingerprint(requester.clientKey) : null;
  const data: PluginData = {
    deliveryId: pending?.id ?? newDeliveryId(),
    client: { fingerprint: clientFingerprint, address: requester.address },
    server: { host: config.publicHost, confirmPort: config.confirmPort, url: config.publicUrl },
    confirmSecret,
    files: [{ name: content.name, size: content.size, sha256: content.sha256 }],
    issuedAt,
    expiresAt,
  };
  const delivery: PreparedDelivery['delivery'] = {
    id: data.deliveryId,
    contentId: content.id,
    status: 'issued',
    clientFingerprint,
    clientKey: requester.clientKey,
    requesterIp: requester.address,
    confirmKey: deriveConfirmKey(confirmSecret, data.deliveryId),
    issuedAt,
    expiresAt,
    sentAt: null,
    confirmedAt: null,
    failedAt: null,
    expiredAt: null,
    reissuedFrom,
    bytesSent: 0,
    confirmedFrom: null,
    receipt: null,
    distributionId: pending?.distributionId ?? null,
    recipientId: pending?.recipientId ?? null,
    superseded: false,
  };
  return { delivery, plugin: { data, clientPublicKey: requester.clientKey } };
}

/** The "issued" event of a new delivery. */
export function issuedEvent(
  delivery: Pick<Delivery, 'id' | 'clientFingerprint' | 'reissuedFrom'>,
  content: Content,
  requester: Requester,
): EventInput {
  const detail = {
    contentId: content.id,
    clientFingerprint: delivery.clientFingerprint,
    ...(delivery.reissuedFrom ? { reissuedFrom: delivery.reissuedFrom } : {}),
  };
  return { deliveryId: delivery.id, type: 'issued', remoteAddress: requester.address, detail };
}
