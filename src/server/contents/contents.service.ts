import { BadRequestException, ForbiddenException, Injectable, NotFoundException, UnauthorizedException } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { matchesHash, newSecret, sha256Hex } from '../auth/secrets.js';
import { AppConfig } from '../config/app-config.js';
import { TickBatch } from '../common/tick-batch.js';
import { ContentResponseDto, CreateContentDto } from './content.dto.js';
import { Content } from './content.entity.js';
import { ContentRepository } from './content.repository.js';
import { ContentStorage } from './content-storage.js';
import { sanitizeFileName } from './file-name.js';
import { MediaTypeDetector } from './media-type.js';
import type { StoredUpload } from './upload-storage-engine.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * How long a live content looked up for a bundle is used without asking the database again. A content row
 * never changes but for its deletion: this replica forgets a content it deletes at once, the others
 * within this time.
 */
export const CONTENT_CACHE_TTL_MS = 1000;
const CONTENT_CACHE_ENTRIES = 10_000;

@Injectable()
export class ContentsService {
  private readonly recentlyLive = new LRUCache<string, Content>({ max: CONTENT_CACHE_ENTRIES, ttl: CONTENT_CACHE_TTL_MS });
  /** Deletions committed by this replica so far: a look-up that overlapped one keeps its rows out of recentlyLive. */
  private deletions = 0;

  /**
   * Live contents asked for by concurrent bundle requests: one answer per turn of the event loop (ids in lower
   * case), from recentlyLive or else one query. Not answered from the cache at once: requests of one turn
   * must reach the issuing group commit together, in one batch.
   */
  private readonly deliverables = new TickBatch<string, Content | null>(async (ids) => {
    const found = new Map<string, Content>();
    const missing: string[] = [];
    for (const id of ids) {
      const content = this.recentlyLive.get(id);
      if (content === undefined) missing.push(id);
      else found.set(id, content);
    }
    if (missing.length > 0) {
      const deletionsBefore = this.deletions;
      const rows = await this.contents.findLiveByIds(missing);
      // Read before a deletion committed here, a row may be of a content deleted since: answer with it
      // (as without a cache), but do not keep it.
      const keep = this.deletions === deletionsBefore;
      for (const content of rows) {
        if (keep) this.recentlyLive.set(content.id, content);
        found.set(content.id, content);
      }
    }
    return ids.map((id) => found.get(id) ?? null);
  });

  constructor(
    private readonly contents: ContentRepository,
    private readonly storage: ContentStorage,
    private readonly config: AppConfig,
    private readonly mediaTypes: MediaTypeDetector,
  ) {}

  /** Stores an upload that the ContentUploadEngine has streamed to a temp file and hashed. */
  async create(upload: StoredUpload | undefined, dto: CreateContentDto): Promise<ContentResponseDto> {
    if (upload === undefined) throw new BadRequestException('multipart field "file" is required');
    try {
      const access = dto.access ?? 'public';
      const accessToken = access === 'token' ? newSecret() : undefined;
      const row = {
        name: sanitizeFileName(upload.originalname),
        mediaType: await this.mediaTypes.detect(upload.path, upload.originalname, upload.mimetype),
        size: upload.size,
        sha256: upload.sha256,
        crc32: upload.crc32,
        access,
        accessTokenHash: accessToken === undefined ? null : sha256Hex(accessToken),
      };
      const content = await this.contents.insertStored(row, () => this.storage.commit(upload.path, upload.sha256));
      return { ...this.toResponse(content), ...(accessToken !== undefined && { accessToken }) };
    } finally {
      await this.storage.removeTemp(upload.path);
    }
  }

  async list(): Promise<ContentResponseDto[]> {
    const contents = await this.contents.listLive();
    return contents.map((content) => this.toResponse(content));
  }

  async get(id: string): Promise<ContentResponseDto> {
    return this.toResponse(await this.findLive(id));
  }

  /** A live (not deleted) content, or 404. */
  async findLive(id: string): Promise<Content> {
    const content = UUID.test(id) ? await this.contents.findLive(id) : null;
    if (content === null) throw new NotFoundException(`no content ${id}`);
    return content;
  }

  /**
   * The content a bundle may be built from: 404 when unknown or deleted; for token access,
   * 401 without a token and 403 with a wrong one (compared in constant time).
   */
  async findDeliverable(id: string, accessToken: string | undefined): Promise<Content> {
    const shared = UUID.test(id) ? await this.deliverables.get(id.toLowerCase()) : null;
    if (shared === null) throw new NotFoundException(`no content ${id}`);
    // Its own copy: the requests of one turn got the same row.
    const content = Object.assign(Object.create(Content.prototype) as Content, shared);
    if (content.access === 'token') {
      if (accessToken === undefined || accessToken === '') throw new UnauthorizedException('this content needs an access token');
      if (content.accessTokenHash === null || !matchesHash(accessToken, content.accessTokenHash)) {
        throw new ForbiddenException('wrong access token');
      }
    }
    return content;
  }

  /** Soft delete; the stored file goes when no other live content has the same SHA-256. */
  async remove(id: string): Promise<void> {
    // The file is removed inside the transaction, so that the digest lock keeps a concurrent upload of the same bytes out.
    const deleted = UUID.test(id) && (await this.contents.softDelete(id, (storageKey) => this.storage.remove(storageKey)));
    if (!deleted) throw new NotFoundException(`no content ${id}`);
    this.deletions++;
    this.recentlyLive.delete(id.toLowerCase());
  }

  bundleUrl(id: string): string {
    return `${this.config.publicUrl}/api/contents/${id}/bundle`;
  }

  private toResponse(content: Content): ContentResponseDto {
    return {
      id: content.id,
      name: content.name,
      mediaType: content.mediaType,
      size: content.size,
      sha256: content.sha256,
      access: content.access,
      createdAt: content.createdAt.toISOString(),
      bundleUrl: this.bundleUrl(content.id),
    };
  }
}
