import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayUnique, IsArray, IsEmail, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';

/** Optional, but not null: a null name or label list would reach a NOT NULL column. */
const UnlessAbsent = () => ValidateIf((_object, value) => value !== undefined);

/** A label: what group selectors match on ("sales", "site:berlin"). */
export const LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
export const LABEL_MESSAGE = 'each label must be 1-64 letters, digits or . _ : / - (starting with a letter or digit)';
export const MAX_LABELS = 32;

/** A person's name as shown to admins: not blank, at most 200 characters. */
export function RecipientName(description: string) {
  return applyDecorators(
    ApiPropertyOptional({ maxLength: 200, description }),
    UnlessAbsent(),
    IsString(),
    Matches(/\S/, { message: 'name must not be empty' }),
    MaxLength(200),
  );
}

/** An email address; null (where a change takes it) clears it. */
export function RecipientEmail() {
  return applyDecorators(
    ApiPropertyOptional({ format: 'email', maxLength: 320, nullable: true, type: String }),
    IsOptional(),
    IsEmail({}, { message: 'email must be an email address' }),
    MaxLength(320),
  );
}

export function RecipientLabels(description: string) {
  return applyDecorators(
    ApiPropertyOptional({ type: [String], maxItems: MAX_LABELS, description }),
    UnlessAbsent(),
    IsArray(),
    ArrayMaxSize(MAX_LABELS),
    ArrayUnique(),
    IsString({ each: true }),
    Matches(LABEL_PATTERN, { each: true, message: LABEL_MESSAGE }),
  );
}
