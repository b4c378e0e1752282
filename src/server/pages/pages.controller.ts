import type { ServerResponse } from 'node:http';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { sendPageFile } from '../http/page-files.js';
import { CONTENT_SECURITY_POLICY, PagesService, type PageFile } from './pages.service.js';

/** The download portal (`/`), the admin dashboard (`/admin`) and their scripts and styles (`/assets/*`). */
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
