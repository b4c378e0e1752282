import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { DELIVERY_STATUSES } from '../delivery.entity.js';
import type { DeliveryStatus } from '../delivery.entity.js';

/** The longest `search` text accepted. */
export const SEARCH_MAX_LENGTH = 100;

/** A fingerprint (64 hex), its first 12 to 63 hex digits, or an IP address. */
const CLIENT_ID_PATTERN = /^([0-9a-f]{12,64}|[0-9a-fA-F:.]{2,45})$/;

/** `clientId` as typed or copied: spaces and a trailing ellipsis (the dashboard cuts fingerprints with one) go; hex in lower case. */
function trimClientId(value: string): string {
  const trimmed = value.trim().replace(/(…|\.\.\.)$/, '');
  return /^[0-9a-fA-F]{12,64}$/.test(trimmed) ? trimmed.toLowerCase() : trimmed;
}

/** The columns the delivery list sorts by (the dashboard's column headers); the repository maps each to SQL. */
export const DELIVERY_SORTS = ['status', 'content', 'client', 'requesterIp', 'issuedAt', 'sentAt', 'confirmedAt'] as const;
export type DeliverySort = (typeof DELIVERY_SORTS)[number];
export const SORT_ORDERS = ['asc', 'desc'] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];

/** An issued_at range: `from` inclusive, `to` exclusive, ISO 8601 times. */
export class IssuedRangeQuery {
  @ApiPropertyOptional({ format: 'date-time', description: 'issued at or after (inclusive)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO 8601 time, e.g. 2026-11-02T09:00:00Z' })
  from?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'issued before (exclusive)' })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO 8601 time, e.g. 2026-11-03T09:00:00Z' })
  to?: string;
}

/** The filters of the delivery list, the CSV export and the dashboard. */
export class DeliveryFilter extends IssuedRangeQuery {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES)
  status?: DeliveryStatus;

  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  contentId?: string;

  /**
   * A client key fingerprint or its first 12 or more hex digits (the dashboard shows 12, and an ellipsis a
   * copy may carry along), or a requester IP (exact).
   */
  @ApiPropertyOptional({
    description: 'a client key fingerprint, whole (64 hex) or its first 12 to 63 hex digits (as the dashboard shows it), or a requester IP',
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? trimClientId(value) : value))
  @IsString()
  @Matches(CLIENT_ID_PATTERN, {
    message: 'clientId must be a client fingerprint (64 hex, or its first 12 or more hex digits) or an IP address',
  })
  clientId?: string;

  /**
   * One text, matched against the content name (any part, any case), the start of the delivery id, the start of the
   * client fingerprint and the start of the requester IP: a delivery matching any of them is listed.
   */
  @ApiPropertyOptional({
    minLength: 1,
    maxLength: SEARCH_MAX_LENGTH,
    description: 'part of the content name (any case), or the start of the delivery id, of the client fingerprint or of the requester IP',
  })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  @IsString()
  @MinLength(1)
  @MaxLength(SEARCH_MAX_LENGTH)
  search?: string;
}

export class ListDeliveriesQuery extends DeliveryFilter {
  @ApiPropertyOptional({ type: Number, minimum: 1, default: 1 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  page = 1;

  @ApiPropertyOptional({ type: Number, minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  pageSize = 50;

  @ApiPropertyOptional({
    enum: DELIVERY_SORTS,
    default: 'issuedAt',
    description:
      'the column to sort by: status (in lifecycle order: pending, issued, sent, confirmed, failed, expired, withdrawn), content (name), client (fingerprint), requesterIp, issuedAt, sentAt or confirmedAt; ties by delivery id, empty values last',
  })
  @IsOptional()
  @IsIn(DELIVERY_SORTS, { message: `sort must be one of ${DELIVERY_SORTS.join(', ')}` })
  sort: DeliverySort = 'issuedAt';

  @ApiPropertyOptional({ enum: SORT_ORDERS, default: 'desc', description: 'asc or desc' })
  @IsOptional()
  @IsIn(SORT_ORDERS, { message: 'order must be asc or desc' })
  order: SortOrder = 'desc';
}
