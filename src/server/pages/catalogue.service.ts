import { Injectable } from '@nestjs/common';
import { ContentRepository } from '../contents/content.repository.js';
import { ContentsService } from '../contents/contents.service.js';

/** A public content as the portal lists it. */
export interface CatalogueEntry {
  id: string;
  name: string;
  size: number;
  mediaType: string;
  sha256: string;
  /** `${PUBLIC_URL}/api/contents/<id>/bundle`: a GET gives `<name>.dcx`. */
  bundleUrl: string;
}

/** What a visitor may fetch: live contents with public access; token-protected contents are never listed. */
@Injectable()
export class CatalogueService {
  constructor(
    private readonly contents: ContentRepository,
    private readonly contentsService: ContentsService,
  ) {}

  async list(): Promise<CatalogueEntry[]> {
    const rows = await this.contents.listPublic();
    return rows.map((content) => ({
      id: content.id,
      name: content.name,
      size: content.size,
      mediaType: content.mediaType,
      sha256: content.sha256,
      bundleUrl: this.contentsService.bundleUrl(content.id),
    }));
  }
}
