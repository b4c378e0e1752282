import { ApiProperty } from '@nestjs/swagger';
import type { ContentFileInfo } from '../../../protocol/file-list.js';
import { DeliveryView } from './delivery.view.js';

/** POST /api/deliveries/:id/reissue: the new delivery and where its bundle is. */
export class ReissuedDeliveryView extends DeliveryView {
  /** `<PUBLIC_URL>/api/deliveries/<newId>/bundle`: `dcx fetch` it, or download it and `dcx open` it. */
  @ApiProperty({ format: 'uri', description: "the new delivery's bundle URL, for `dcx fetch`" })
  bundleUrl: string;
}

/** One row of GET /api/deliveries/counts. */
export class ContentCountsView {
  @ApiProperty({ format: 'uuid' })
  contentId: string;
  @ApiProperty()
  contentName: string;
  @ApiProperty()
  issued: number;
  @ApiProperty()
  sent: number;
  @ApiProperty()
  confirmed: number;
  @ApiProperty()
  failed: number;
  @ApiProperty()
  expired: number;
  @ApiProperty()
  total: number;
}

/** One content file a receipt covers. */
export class ReceiptFileView implements ContentFileInfo {
  @ApiProperty()
  name: string;
  @ApiProperty()
  size: number;
  @ApiProperty({ description: 'SHA-256, hex' })
  sha256: string;
}

/** GET /api/deliveries/:id/receipt: the signed bytes and what they say (checked against the server key). */
export class DeliveryReceiptView {
  @ApiProperty({ format: 'uuid' })
  deliveryId: string;
  @ApiProperty()
  keyId: string;
  /** The Ed25519 key that signed it, base64url of the 32 raw bytes (as /.well-known/dcx `serverKey`). */
  @ApiProperty({ description: 'the Ed25519 key that signed it, base64url (as /.well-known/dcx serverKey)' })
  serverKey: string;
  @ApiProperty()
  serverFingerprint: string;
  /** SHA-256 of the (single) content file. */
  @ApiProperty({ type: String, nullable: true })
  contentSha256: string | null;
  @ApiProperty({ type: String, nullable: true })
  clientFingerprint: string | null;
  @ApiProperty()
  requesterAddress: string;
  @ApiProperty()
  issuedAt: Date;
  @ApiProperty({ type: Date, nullable: true })
  sentAt: Date | null;
  @ApiProperty()
  confirmedAt: Date;
  @ApiProperty({ type: [ReceiptFileView] })
  files: ReceiptFileView[];
  /** Base64 of the signed receipt bytes (PROTOCOL.md §5). */
  @ApiProperty({ description: 'base64 of the signed receipt bytes (PROTOCOL.md §5)' })
  receipt: string;
}

/** One row of GET /api/deliveries/completion: a content sent to named recipients, and how many have it. */
export class ContentCompletionView {
  @ApiProperty({ format: 'uuid' })
  contentId: string;
  @ApiProperty({ description: 'named recipients its distributions address (each once; withdrawn deliveries not counted)' })
  recipients: number;
  @ApiProperty({ description: 'of those, how many have a confirmed delivery of it' })
  received: number;
}
