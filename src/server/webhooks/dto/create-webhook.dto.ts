import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayNotEmpty, ArrayUnique, IsArray, IsIn, IsOptional, IsString, IsUrl, Matches, MaxLength, MinLength } from 'class-validator';
import { DELIVERY_EVENT_TYPES } from '../../deliveries/delivery-event.entity.js';
import type { DeliveryEventType } from '../../deliveries/delivery-event.entity.js';

export class CreateWebhookDto {
  @ApiProperty({ format: 'uri', maxLength: 2048, description: 'where every status change is POSTed' })
  @IsUrl(
    { protocols: ['http', 'https'], require_protocol: true, require_tld: false },
    { message: 'url must be an http:// or https:// URL' },
  )
  @MaxLength(2048)
  url: string;

  /** HMAC key; generated (and shown once) when absent. */
  @ApiPropertyOptional({ minLength: 16, maxLength: 256, description: 'HMAC-SHA256 key; generated and shown once when absent' })
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'secret must be at least 16 characters long' })
  @MaxLength(256)
  @Matches(/^[\x21-\x7e]+$/, { message: 'secret must be printable ASCII without spaces' })
  secret?: string;

  /** The event types to send; absent: all. */
  @ApiPropertyOptional({ enum: DELIVERY_EVENT_TYPES, isArray: true, description: 'event types to send; absent: all' })
  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @ArrayUnique()
  @IsIn(DELIVERY_EVENT_TYPES, { each: true, message: `events must be a list of: ${DELIVERY_EVENT_TYPES.join(', ')}` })
  events?: DeliveryEventType[];
}
