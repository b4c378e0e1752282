import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { ArrayMaxSize, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { LABEL_MESSAGE, LABEL_PATTERN, MAX_LABELS, RecipientEmail, RecipientLabels, RecipientName } from './recipient-fields.js';
import { PageLimit } from '../../common/page-limit.js';

export class ListRecipientsQuery {
  @ApiPropertyOptional({ description: 'part of the name or email, any case' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  search?: string;

  @ApiPropertyOptional({ type: [String], description: 'recipients with all these labels (repeat the parameter for several)' })
  @IsOptional()
  @Transform(({ value }: { value: unknown }) => (Array.isArray(value) ? (value as unknown[]) : [value]))
  @ArrayMaxSize(MAX_LABELS)
  @IsString({ each: true })
  @Matches(LABEL_PATTERN, { each: true, message: LABEL_MESSAGE })
  label?: string[];

  @PageLimit(500, 100)
  limit = 100;

  @ApiPropertyOptional({ description: 'the `next` of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(400)
  after?: string;
}

export class UpdateRecipientDto {
  @RecipientName('the new name')
  name?: string;

  @RecipientEmail()
  email?: string | null;

  @RecipientLabels('the new labels (replace the old ones)')
  labels?: string[];
}

export class ListRecipientEventsQuery {
  @PageLimit(500, 100)
  limit = 100;

  @ApiPropertyOptional({ description: 'events older than this event id' })
  @IsOptional()
  @Matches(/^\d{1,18}$/, { message: 'before must be an event id' })
  before?: string;
}
