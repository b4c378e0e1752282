import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AdminTokenService } from './admin-token.service.js';

/** `Bearer <token>`; group 1 is the token. */
export const BEARER = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i;

/** `Authorization: Bearer <admin token>`, else 401 with WWW-Authenticate (RFC 6750). */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly tokens: AdminTokenService) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    if (match !== null && this.tokens.verify(match[1]!)) return true;
    http
      .getResponse<Response>()
      .setHeader('WWW-Authenticate', match === null ? 'Bearer realm="dcx"' : 'Bearer realm="dcx", error="invalid_token"');
    throw new UnauthorizedException(match === null ? 'admin token required (Authorization: Bearer <token>)' : 'invalid admin token');
  }
}
