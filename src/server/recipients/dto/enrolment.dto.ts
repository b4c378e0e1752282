import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { RecipientEmail, RecipientLabels, RecipientName } from './recipient-fields.js';

export class CreateEnrolmentCodeDto {
  @RecipientName('the new recipient’s name; absent: the person enrolling gives it')
  name?: string;

  @RecipientEmail()
  email?: string;

  @RecipientLabels('the new recipient’s labels')
  labels?: string[];

  @ApiPropertyOptional({ format: 'uuid', description: 'a further installation of this existing recipient' })
  @IsOptional()
  @IsUUID('all', { message: 'recipientId must be a UUID' })
  recipientId?: string;

  @ApiProperty({ example: '7d', description: 'how long the code stays usable: a duration ("7d", "24h", "15m"), at most 30 days' })
  @IsString()
  @MaxLength(32)
  expiresIn: string;
}

export class EnrolDto {
  @ApiProperty({ example: '7K3M-Q9XD', description: 'the one-time code the admin gave' })
  @IsString()
  @MaxLength(64)
  code: string;

  @RecipientName('your name, when the code names no recipient')
  name?: string;
}
