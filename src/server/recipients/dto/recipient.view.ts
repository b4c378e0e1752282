import { ApiProperty } from '@nestjs/swagger';
import type { RecipientEventType } from '../recipient-events.repository.js';

export class RecipientView {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ nullable: true, type: String })
  email: string | null;
  @ApiProperty({ type: [String] })
  labels: string[];
  @ApiProperty()
  createdAt: Date;
}

export class RecipientSummaryView extends RecipientView {
  @ApiProperty({ description: 'installations enrolled and not revoked' })
  activeInstallations: number;
  @ApiProperty({ nullable: true, type: Date, description: 'the latest signed request of any of its installations' })
  lastSeenAt: Date | null;
}

export class RecipientPageView {
  @ApiProperty({ type: [RecipientSummaryView], description: 'by name' })
  items: RecipientSummaryView[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as `after` for the next page; null on the last' })
  next: string | null;
}

export class InstallationView {
  @ApiProperty({ description: 'SHA-256 of the installation’s X25519 public key, hex' })
  fingerprint: string;
  @ApiProperty()
  enrolledAt: Date;
  @ApiProperty({ nullable: true, type: String })
  enrolledFrom: string | null;
  @ApiProperty({ nullable: true, type: Date })
  lastSeenAt: Date | null;
  @ApiProperty({ nullable: true, type: Date })
  revokedAt: Date | null;
}

export class RecipientDetailView extends RecipientView {
  @ApiProperty({ type: [InstallationView] })
  installations: InstallationView[];
}

export class RecipientEventView {
  @ApiProperty()
  id: string;
  @ApiProperty()
  type: RecipientEventType;
  @ApiProperty({ nullable: true, type: String })
  fingerprint: string | null;
  @ApiProperty({ nullable: true, type: String })
  reason: string | null;
  @ApiProperty({ nullable: true, type: String })
  remoteAddress: string | null;
  @ApiProperty()
  at: Date;
  @ApiProperty({ nullable: true, type: Object })
  detail: Record<string, unknown> | null;
}

export class RevokedInstallationView {
  @ApiProperty()
  fingerprint: string;
  @ApiProperty({ format: 'uuid' })
  recipientId: string;
  @ApiProperty()
  revokedAt: Date;
}

/** What an enrolled installation learns of itself (GET /api/recipients/me). */
export class InstallationOfRecipientView {
  @ApiProperty({ format: 'uuid' })
  recipientId: string;
  @ApiProperty()
  name: string;
  @ApiProperty({ nullable: true, type: String })
  email: string | null;
  @ApiProperty()
  fingerprint: string;
  @ApiProperty()
  enrolledAt: Date;
}
