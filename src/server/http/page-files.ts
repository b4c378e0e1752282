import type { ServerResponse } from 'node:http';
import { HttpException, NotFoundException } from '@nestjs/common';
import type { Response } from 'express';

/**
 * Sends one of the server's own files with Express's res.sendFile (the `send` package): ETag and
 * Last-Modified, 304 on revalidation, HEAD without a body. `headers` are set first and win: the
 * Content-Type and Cache-Control given here are not replaced.
 * Resolves once the file is sent or the client went away; rejects (for Nest to answer) when nothing was.
 */
export function sendPageFile(res: ServerResponse, path: string, headers: Record<string, string>): Promise<void> {
  const response = res as Response;
  response.set(headers);
  return new Promise((resolve, reject) => {
    // The path is one of PagesService's, never a request's: a dot directory above public/ must not make it 404.
    response.sendFile(path, { cacheControl: false, dotfiles: 'allow' }, (error?: Error & { status?: number }) => {
      if (error === undefined || response.headersSent || res.destroyed) return resolve();
      response.removeHeader('Content-Type');
      reject(
        error.status === 404 ? new NotFoundException('no such file') : new HttpException('the file cannot be read', error.status ?? 500),
      );
    });
  });
}
