import { ApiProperty } from '@nestjs/swagger';

export class DistributionRecipientView {
  @ApiProperty({ format: 'uuid' }) recipientId: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: String, nullable: true }) email: string | null;
  @ApiProperty({ format: 'uuid' }) deliveryId: string;
  @ApiProperty() status: string;
  @ApiProperty({ type: String, nullable: true, description: 'the installation it was sealed to' }) fingerprint: string | null;
  @ApiProperty({ type: Date, nullable: true }) sentAt: Date | null;
  @ApiProperty({ type: Date, nullable: true }) confirmedAt: Date | null;
}

export class DistributionView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) content: { id: string; name: string; size: number; sha256: string };
  @ApiProperty({ type: String, nullable: true }) note: string | null;
  @ApiProperty({ type: Date, nullable: true }) dueAt: Date | null;
  @ApiProperty() createdAt: Date;
  @ApiProperty({ type: Date, nullable: true }) cancelledAt: Date | null;
  @ApiProperty({ type: Date, nullable: true }) completedAt: Date | null;
  @ApiProperty({ type: Date, nullable: true }) overdueAt: Date | null;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'number' } }) counts: Record<string, number>;
  @ApiProperty({ type: 'array', items: { type: 'object' }, description: 'groups as resolved when it was created' })
  sources: unknown;
}

export class DistributionDetailView extends DistributionView {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: '{items: DistributionRecipientView[], next: recipient id or null}',
  })
  recipients: { items: DistributionRecipientView[]; next: string | null };
}
