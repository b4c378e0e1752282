import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { CONTENT_SECURITY_POLICY, PagesService, type PageFile } from './pages.service.js';

/** The download portal (`/`), the admin dashboard (`/admin`) and their scripts and styles (`/assets/*`). */
@ApiExcludeController()
@Controller()
export class PagesController {
  constructor(private readonly pages: PagesService) {}

  @Get()
  portal(@Res() res: Response): void {
    send(res, this.pages.page('index'), 'no-cache');
  }

  @Get('admin')
  dashboard(@Res() res: Response): void {
    send(res, this.pages.page('admin'), 'no-store');
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() res: Response): void {
    send(res, this.pages.asset(name), 'no-cache');
  }
}

function send(res: Response, file: PageFile, cacheControl: string): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cache-Control', cacheControl);
  res.type(file.mediaType);
  res.sendFile(file.path);
}
