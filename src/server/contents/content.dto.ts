import { IsIn, IsOptional } from 'class-validator';
import { CONTENT_ACCESS, type ContentAccess } from './content.entity.js';

/** The non-file fields of `POST /api/contents` (multipart). */
export class CreateContentDto {
  @IsOptional()
  @IsIn(CONTENT_ACCESS)
  access?: ContentAccess;
}

/** A content as the admin API shows it. */
export class ContentResponseDto {
  id: string;
  name: string;
  mediaType: string;
  size: number;
  sha256: string;
  access: ContentAccess;
  createdAt: string;
  /** `${PUBLIC_URL}/api/contents/<id>/bundle` */
  bundleUrl: string;
  /** Only in the response to the upload of a token-access content: shown once, stored only as a hash. */
  accessToken?: string;
}
