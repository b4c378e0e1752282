import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { CatalogueService, type CatalogueEntry } from './catalogue.service.js';

/** The portal's public read API. */
@ApiTags('portal')
@Controller('api/catalogue')
export class CatalogueController {
  constructor(private readonly catalogue: CatalogueService) {}

  @Get()
  list(): Promise<CatalogueEntry[]> {
    return this.catalogue.list();
  }
}
