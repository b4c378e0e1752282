import { CanActivate, ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { AdminSessionService, type SessionRequest } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';

/** `Bearer <token>`; group 1 is the token. */
export const BEARER = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i;

/**
 * `Authorization: Bearer <admin token>`, or the dashboard's session cookie (see AdminSessionService);
 * a cookie-authenticated POST/PUT/PATCH/DELETE must also pass the same-origin check (403 otherwise).
 * Neither: 401 with WWW-Authenticate (RFC 6750).
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly tokens: AdminTokenService,
    private readonly sessions: AdminSessionService,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<SessionRequest>();
    const header = request.headers.authorization;
    const match = header === undefined ? null : BEARER.exec(header);
    if (match !== null && this.tokens.verify(match[1])) return true;
    if (match === null && this.sessions.verify(this.sessions.presented(request)) !== null) {
      if (this.sessions.mayChangeState(request)) return true;
      throw new ForbiddenException('cross-site request refused: a session cookie works only from this server’s own pages');
    }
    http
      .getResponse<ServerResponse>()
      .setHeader('WWW-Authenticate', match === null ? 'Bearer realm="dcx"' : 'Bearer realm="dcx", error="invalid_token"');
    throw new UnauthorizedException(
      match === null ? 'admin token required (Authorization: Bearer <token>, or log in at /admin)' : 'invalid admin token',
    );
  }
}
