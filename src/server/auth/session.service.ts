import type { IncomingMessage, ServerResponse } from 'node:http';
import { Injectable, UnauthorizedException } from '@nestjs/common';
import { clearCookie, setCookie } from '../http/cookies.js';
import { AdminSessionService, SESSION_COOKIE, SESSION_TTL_SECONDS } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';
import type { SessionView } from './session.dto.js';

/** Login, current session and logout for the dashboard: the session cookie set on and cleared from the response. */
@Injectable()
export class SessionService {
  constructor(
    private readonly tokens: AdminTokenService,
    private readonly sessions: AdminSessionService,
  ) {}

  login(token: string, req: IncomingMessage, res: ServerResponse): void {
    if (!this.tokens.verify(token)) throw new UnauthorizedException('wrong admin token');
    const { value } = this.sessions.issue();
    setCookie(res, SESSION_COOKIE, value, this.sessions.cookieOptions(req, SESSION_TTL_SECONDS));
    res.setHeader('Cache-Control', 'no-store');
  }

  current(req: IncomingMessage): SessionView {
    const expiresAt = req.headers.authorization === undefined ? this.sessions.verify(this.sessions.presented(req)) : null;
    return { authenticated: true, expiresAt: expiresAt?.toISOString() ?? null };
  }

  /** Clears the cookie. Sessions are stateless: a copied cookie value stays valid until it expires. */
  logout(req: IncomingMessage, res: ServerResponse): void {
    clearCookie(res, SESSION_COOKIE, this.sessions.cookieOptions(req));
  }
}
