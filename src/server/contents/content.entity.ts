import { Column, CreateDateColumn, DeleteDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintToNumber } from '../database/column-transformers.js';

export const CONTENT_ACCESS = ['public', 'token'] as const;
export type ContentAccess = (typeof CONTENT_ACCESS)[number];

/** An uploaded content (D). Soft-deleted rows keep their id so deliveries still refer to them. */
@Entity({ name: 'contents' })
export class Content {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** Sanitised file name (basename, no control characters, at most 255 UTF-8 bytes). */
  @Column({ type: 'text' })
  name: string;

  @Column({ name: 'media_type', type: 'text' })
  mediaType: string;

  @Column({ type: 'bigint', transformer: bigintToNumber })
  size: number;

  /** SHA-256 of the bytes, lower-case hex. */
  @Column({ type: 'char', length: 64 })
  sha256: string;

  /** CRC-32 of the bytes (unsigned), computed at upload for the ZIP entry. */
  @Column({ type: 'bigint', transformer: bigintToNumber })
  crc32: number;

  /** `<sha[0..2]>/<sha>`; open it through ContentStorage. */
  @Column({ name: 'storage_key', type: 'text' })
  storageKey: string;

  @Column({ type: 'text' })
  access: ContentAccess;

  /** SHA-256 hex of the access token when access is 'token'; the token itself is never stored. */
  @Column({ name: 'access_token_hash', type: 'char', length: 64, nullable: true })
  accessTokenHash: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @DeleteDateColumn({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt: Date | null;
}
