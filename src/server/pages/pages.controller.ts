import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { basename, dirname } from 'node:path';
import type { FastifyReply } from 'fastify';
import { CONTENT_SECURITY_POLICY, PagesService, type PageFile } from './pages.service.js';

/** The download portal (`/`), the admin dashboard (`/admin`) and their scripts and styles (`/assets/*`). */
@ApiExcludeController()
@Controller()
export class PagesController {
  constructor(private readonly pages: PagesService) {}

  @Get()
  portal(@Res() res: FastifyReply): void {
    send(res, this.pages.page('index'), 'no-cache');
  }

  @Get('admin')
  dashboard(@Res() res: FastifyReply): void {
    send(res, this.pages.page('admin'), 'no-store');
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() res: FastifyReply): void {
    send(res, this.pages.asset(name), 'no-cache');
  }
}

/** @fastify/static's sendFile (registered in configureApp): ETag and Last-Modified, 304 on revalidation. */
function send(res: FastifyReply, file: PageFile, cacheControl: string): void {
  res
    .header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
    .header('X-Content-Type-Options', 'nosniff')
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Frame-Options', 'DENY')
    .header('Cache-Control', cacheControl)
    .type(file.mediaType);
  void res.sendFile(basename(file.path), dirname(file.path), { cacheControl: false, contentType: false });
}
