import type { ServerResponse } from 'node:http';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { sendPageFile } from '../http/page-files.js';
import { CONTENT_SECURITY_POLICY, PagesService, type PageFile } from './pages.service.js';

/**
 * The download portal (`/`), the admin dashboard (`/admin`) with its distributions, recipients and groups
 * pages, and their scripts and styles (`/assets/*`). The admin pages are static: their data comes from the
 * admin API with the session cookie, so they need no guard of their own.
 */
@ApiExcludeController()
@Controller()
export class PagesController {
  constructor(private readonly pages: PagesService) {}

  @Get()
  portal(@Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.page('index'), 'no-cache');
  }

  @Get('admin')
  dashboard(@Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.page('admin'), 'no-store');
  }

  @Get('distributions')
  distributions(@Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.page('distributions'), 'no-store');
  }

  @Get('recipients')
  recipients(@Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.page('recipients'), 'no-store');
  }

  @Get('groups')
  groups(@Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.page('groups'), 'no-store');
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() res: ServerResponse): Promise<void> {
    return send(res, this.pages.asset(name), 'no-cache');
  }
}

/** A page file with the strict CSP; ETag and Last-Modified, 304 on revalidation (see sendPageFile). */
function send(res: ServerResponse, file: PageFile, cacheControl: string): Promise<void> {
  return sendPageFile(res, file.path, {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cache-Control': cacheControl,
    'Content-Type': file.mediaType,
  });
}
