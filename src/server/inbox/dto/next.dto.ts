import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBase64, IsInt, IsOptional, IsString, Max, MaxLength, Min, ValidateBy, ValidateNested } from 'class-validator';
import { deliveryIdToBytes } from '../../../protocol/delivery-id.js';

/** The lease bounds of the contract (docs/design/resident-agent.md §3). */
export const MIN_LEASE_SECONDS = 10;
export const MAX_LEASE_SECONDS = 3600;
/** Base64 of the largest frame CONFIRM_MAX_FRAME_BYTES allows (16 MiB); the configured limit is checked on the bytes. */
const MAX_CONFIRMATION_BASE64 = Math.ceil((16 * 1024 * 1024) / 3) * 4;

/** 128 random bits in UUID notation, not an RFC 4122 UUID (no version digit): IsUUID would refuse most of them. */
function IsDeliveryId(): PropertyDecorator {
  return ValidateBy({
    name: 'isDeliveryId',
    validator: {
      validate: (value: unknown) => {
        try {
          return typeof value === 'string' && deliveryIdToBytes(value).length > 0;
        } catch {
          return false;
        }
      },
      defaultMessage: (args) => `${args?.property} must be a delivery id: 32 hex digits in UUID notation`,
    },
  });
}

export class InboxAckDto {
  @ApiProperty({ format: 'uuid', description: 'the delivery the previous call leased' })
  @IsString()
  @IsDeliveryId()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.toLowerCase() : value))
  deliveryId: string;

  @ApiProperty({ format: 'byte', description: 'its confirmation frame [50], base64, as sent to the confirmation port' })
  @IsBase64(undefined, { message: 'confirmation must be the base64 of a confirmation frame' })
  @MaxLength(MAX_CONFIRMATION_BASE64)
  confirmation: string;
}

export class InboxNextDto {
  @ApiPropertyOptional({ type: InboxAckDto, description: 'confirms the previous delivery before the next is leased' })
  @IsOptional()
  @ValidateNested()
  @Type(() => InboxAckDto)
  ack?: InboxAckDto;

  @ApiPropertyOptional({ minimum: MIN_LEASE_SECONDS, maximum: MAX_LEASE_SECONDS, description: 'default INBOX_LEASE (5 min)' })
  @IsOptional()
  @IsInt({ message: `leaseSeconds must be an integer from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}` })
  @Min(MIN_LEASE_SECONDS, { message: `leaseSeconds must be an integer from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}` })
  @Max(MAX_LEASE_SECONDS, { message: `leaseSeconds must be an integer from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}` })
  leaseSeconds?: number;
}
