import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { DELIVERY_STATUSES } from '../delivery.entity.js';
import type { DeliveryStatus } from '../delivery.entity.js';

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

  /** A client key fingerprint (64 hex) or a requester IP. */
  @ApiPropertyOptional({ description: 'a client key fingerprint (64 hex) or a requester IP' })
  @IsOptional()
  @IsString()
  @Matches(/^([0-9a-f]{64}|[0-9a-fA-F:.]{2,45})$/, { message: 'clientId must be a client fingerprint (64 hex) or an IP address' })
  clientId?: string;
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
}
