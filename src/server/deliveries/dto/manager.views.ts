import type { ContentFileInfo } from '../../../protocol/plugin-data.js';
import type { DeliveryView } from './delivery.view.js';

/** POST /api/deliveries/:id/reissue: the new delivery and where its bundle is. */
export interface ReissuedDeliveryView extends DeliveryView {
  /** `<PUBLIC_URL>/api/deliveries/<newId>/bundle`: `dcx fetch` it, or download it and `dcx open` it. */
  bundleUrl: string;
}

/** One row of GET /api/deliveries/counts. */
export interface ContentCountsView {
  contentId: string;
  contentName: string;
  issued: number;
  sent: number;
  confirmed: number;
  failed: number;
  expired: number;
  total: number;
}

/** GET /api/deliveries/:id/receipt: the signed bytes and what they say (checked against the server key). */
export interface DeliveryReceiptView {
  deliveryId: string;
  keyId: string;
  /** The Ed25519 key that signed it, base64url of the 32 raw bytes (as /.well-known/dcx `serverKey`). */
  serverKey: string;
  serverFingerprint: string;
  /** SHA-256 of the (single) content file. */
  contentSha256: string | null;
  clientFingerprint: string | null;
  requesterAddress: string;
  issuedAt: Date;
  sentAt: Date | null;
  confirmedAt: Date;
  files: ContentFileInfo[];
  /** Base64 of the signed receipt bytes (PROTOCOL.md §5). */
  receipt: string;
}
