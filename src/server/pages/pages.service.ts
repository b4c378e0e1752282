import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Injectable, NotFoundException, OnModuleInit } from '@nestjs/common';
import { findPublicDir } from './public-dir.js';

/** No inline script or style, nothing from elsewhere: the pages load only their own files. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const MEDIA_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The HTML pages under `public/`, each `<name>.html`. */
export type PageName = 'index' | 'admin' | 'distributions' | 'recipients' | 'groups';

export interface PageFile {
  path: string;
  mediaType: string;
}

/**
 * The portal's and dashboard's files under `public/`. The set of servable assets is read once at start,
 * so a request names one of them or gets 404: no request path ever becomes a file path.
 */
@Injectable()
export class PagesService implements OnModuleInit {
  private readonly dir = findPublicDir();
  private readonly assets = new Map<string, PageFile>();

  async onModuleInit(): Promise<void> {
    for (const name of await readdir(join(this.dir, 'assets'))) {
      const mediaType = MEDIA_TYPES[extname(name)];
      if (mediaType !== undefined) this.assets.set(name, { path: join(this.dir, 'assets', name), mediaType });
    }
  }

  page(name: PageName): PageFile {
    return { path: join(this.dir, `${name}.html`), mediaType: MEDIA_TYPES['.html'] };
  }

  asset(name: string): PageFile {
    const file = this.assets.get(name);
    if (file === undefined) throw new NotFoundException(`no asset ${name}`);
    return file;
  }
}
