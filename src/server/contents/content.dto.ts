import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { CONTENT_ACCESS, type ContentAccess } from './content.entity.js';

/** The non-file fields of `POST /api/contents` (multipart). */
export class CreateContentDto {
  @ApiPropertyOptional({
    enum: CONTENT_ACCESS,
    default: 'public',
    description: 'public: anyone with the bundle URL; token: only with the access token returned once',
  })
  @IsOptional()
  @IsIn(CONTENT_ACCESS)
  access?: ContentAccess;
}

/** A content as the admin API shows it. */
export class ContentResponseDto {
  @ApiProperty({ format: 'uuid' })
  id: string;
  @ApiProperty({ description: 'sanitised file name' })
  name: string;
  @ApiProperty()
  mediaType: string;
  @ApiProperty({ description: 'bytes' })
  size: number;
  @ApiProperty({ description: 'SHA-256 of the content, hex' })
  sha256: string;
  @ApiProperty({ enum: CONTENT_ACCESS })
  access: ContentAccess;
  @ApiProperty({ format: 'date-time' })
  createdAt: string;
  /** `${PUBLIC_URL}/api/contents/<id>/bundle` */
  @ApiProperty({ format: 'uri' })
  bundleUrl: string;
  /** Only in the response to the upload of a token-access content: shown once, stored only as a hash. */
  @ApiPropertyOptional({ description: 'only in the answer to the upload of a token-access content: shown once' })
  accessToken?: string;
}
