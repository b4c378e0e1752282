import { ApiProperty } from '@nestjs/swagger';
import type { WellKnownDocument } from './server-keys.service.js';

/** GET /.well-known/dcx as the OpenAPI description shows it (the service returns the same shape). */
export class WellKnownDto implements WellKnownDocument {
  @ApiProperty({ description: 'Ed25519 public key that signs plug-in data and receipts, base64url' })
  serverKey: string;
  @ApiProperty({ description: 'X25519 public key that anonymous plug-in data is sealed with, base64url' })
  sealKey: string;
  @ApiProperty({ description: 'id of the current server key set' })
  keyId: string;
  @ApiProperty({ description: 'SHA-256 of serverKey, hex: what `dcx trust` shows' })
  fingerprint: string;
  @ApiProperty({ description: 'host clients confirm to' })
  confirmHost: string;
  @ApiProperty({ description: 'TCP port of the confirmation receiver' })
  confirmPort: number;
  @ApiProperty({ format: 'uri', description: 'HTTP origin of this server' })
  url: string;
}
