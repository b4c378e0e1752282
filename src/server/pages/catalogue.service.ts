import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Content } from '../contents/content.entity.js';
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
    @InjectRepository(Content) private readonly contents: Repository<Content>,
    private readonly contentsService: ContentsService,
  ) {}

  async list(): Promise<CatalogueEntry[]> {
    const rows = await this.contents.find({ where: { access: 'public' }, order: { name: 'ASC', id: 'ASC' } });
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
