import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { LABEL_MESSAGE, LABEL_PATTERN, MAX_LABELS } from '../../recipients/dto/recipient-fields.js';

/** Members named in one request at most: a larger group is better made with a label selector. */
export const MAX_MEMBERS_PER_REQUEST = 10_000;

export class GroupSelectorDto {
  @ApiProperty({ type: [String], description: 'recipients having all these labels are members' })
  @IsArray()
  @ArrayNotEmpty({ message: 'selector.labels must name at least one label' })
  @ArrayMaxSize(MAX_LABELS)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(LABEL_PATTERN, { each: true, message: LABEL_MESSAGE })
  labels: string[];
}

function MemberIds(description: string) {
  return applyDecorators(
    ApiPropertyOptional({ type: [String], format: 'uuid', maxItems: MAX_MEMBERS_PER_REQUEST, description }),
    IsOptional(),
    IsArray(),
    ArrayMaxSize(MAX_MEMBERS_PER_REQUEST),
    IsUUID('all', { each: true, message: '$property must be a list of recipient ids' }),
  );
}

export class CreateGroupDto {
  @ApiProperty({ maxLength: 200 })
  @IsString()
  @Matches(/\S/, { message: 'name must not be empty' })
  @MaxLength(200)
  name: string;

  @MemberIds('recipient ids')
  members?: string[];

  @ApiPropertyOptional({ type: GroupSelectorDto, description: 'members by label, resolved whenever the group is used' })
  @IsOptional()
  @ValidateNested()
  @Type(() => GroupSelectorDto)
  selector?: GroupSelectorDto;
}

export class UpdateGroupDto {
  @ApiPropertyOptional({ maxLength: 200 })
  @ValidateIf((_object, value) => value !== undefined)
  @IsString()
  @Matches(/\S/, { message: 'name must not be empty' })
  @MaxLength(200)
  name?: string;

  @MemberIds('recipient ids to add')
  addMembers?: string[];

  @MemberIds('recipient ids to remove')
  removeMembers?: string[];

  @ApiPropertyOptional({ type: GroupSelectorDto, nullable: true, description: 'the new selector; null removes it' })
  @IsOptional()
  @ValidateNested()
  @Type(() => GroupSelectorDto)
  selector?: GroupSelectorDto | null;
}
