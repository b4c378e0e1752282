import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsIn, IsISO8601, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { RECIPIENT_FILTERS, type RecipientFilter } from '../distribution-status.js';
import { PageLimit } from '../../common/page-limit.js';

/**
 * At most this many recipients named in one distribution; groups address more (100,000 in the bench). The JSON body
 * limit (1 MiB) holds about 26,000 ids: a higher limit here would be unreachable, a 413 instead of this message.
 */
export const MAX_NAMED_RECIPIENTS = 20_000;

export class CreateDistributionDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all')
  contentId: string;

  @ApiPropertyOptional({ type: [String], format: 'uuid', maxItems: MAX_NAMED_RECIPIENTS })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_NAMED_RECIPIENTS, { message: `at most ${MAX_NAMED_RECIPIENTS} recipients can be named in one distribution` })
  @IsUUID('all', { each: true, message: 'recipients must be recipient ids (uuid)' })
  recipients?: string[];

  @ApiPropertyOptional({ type: [String], format: 'uuid' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true, message: 'groups must be group ids (uuid)' })
  groups?: string[];

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'dueAt must be an ISO 8601 time, e.g. 2026-12-09T09:00:00Z' })
  dueAt?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  note?: string;
}

export class DistributionQuery {
  @ApiPropertyOptional({ enum: RECIPIENT_FILTERS })
  @IsOptional()
  @IsIn(RECIPIENT_FILTERS, { message: `status must be one of: ${RECIPIENT_FILTERS.join(', ')}` })
  status?: RecipientFilter;

  @PageLimit(1000, 100)
  limit = 100;

  @ApiPropertyOptional({ format: 'uuid', description: 'the `next` of the previous page (a recipient id)' })
  @IsOptional()
  @IsUUID('all')
  after?: string;
}

export class RecipientsCsvQuery {
  @ApiPropertyOptional({ enum: RECIPIENT_FILTERS })
  @IsOptional()
  @IsIn(RECIPIENT_FILTERS, { message: `status must be one of: ${RECIPIENT_FILTERS.join(', ')}` })
  status?: RecipientFilter;
}

export class ResendDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'one recipient; absent: every unconfirmed one' })
  @IsOptional()
  @IsUUID('all')
  recipientId?: string;
}
