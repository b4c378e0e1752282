// The delivery confirmation ID [871]: 16 random bytes on the wire, UUID notation everywhere else.
import { DELIVERY_ID_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';
import { secureRandomBytes } from './random.js';

/** A fresh, unguessable 128-bit delivery confirmation ID [871]. */
export function newDeliveryId(): string {
  return deliveryIdToString(secureRandomBytes(DELIVERY_ID_SIZE));
}

/** The 16 ID bytes in UUID notation, so PostgreSQL stores them in a uuid column. */
export function deliveryIdToString(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const DELIVERY_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function deliveryIdToBytes(id: string): Buffer {
  if (!DELIVERY_ID_PATTERN.test(id)) throw new ProtocolError('MALFORMED', `not a delivery id: ${JSON.stringify(id)}`);
  return Buffer.from(id.replaceAll('-', ''), 'hex');
}
