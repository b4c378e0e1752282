import { Module } from '@nestjs/common';
import { ContentsModule } from '../contents/contents.module.js';
import { DashboardModule } from '../dashboard/dashboard.module.js';
import { CatalogueController } from './catalogue.controller.js';
import { CatalogueService } from './catalogue.service.js';
import { PagesController } from './pages.controller.js';
import { PagesService } from './pages.service.js';

/**
 * The web front: the download portal and the admin dashboard pages, served from `public/`, the public
 * catalogue API and, through DashboardModule, the dashboard's live delivery events.
 */
@Module({
  imports: [ContentsModule, DashboardModule],
  controllers: [CatalogueController, PagesController],
  providers: [CatalogueService, PagesService],
})
export class PagesModule {}
