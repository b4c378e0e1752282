import { Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AdminSessionService, SESSION_COOKIE, SESSION_TTL_SECONDS } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';
import type { SessionView } from './session.dto.js';

/** Login, current session and logout for the dashboard (cookie handling on the Express response). */
@Injectable()
export class SessionService {
  constructor(
    private readonly tokens: AdminTokenService,
    private readonly sessions: AdminSessionService,
  ) {}

  login(token: string, req: Request, res: Response): void {
    if (!this.tokens.verify(token)) throw new UnauthorizedException('wrong admin token');
    const { value } = this.sessions.issue();
    res.cookie(SESSION_COOKIE, value, this.sessions.cookieOptions(req, SESSION_TTL_SECONDS * 1000));
    res.setHeader('Cache-Control', 'no-store');
  }

  current(req: Request): SessionView {
    const expiresAt = req.headers.authorization === undefined ? this.sessions.verify(this.sessions.presented(req)) : null;
    return { authenticated: true, expiresAt: expiresAt?.toISOString() ?? null };
  }

  /** Clears the cookie. Sessions are stateless: a copied cookie value stays valid until it expires. */
  logout(req: Request, res: Response): void {
    res.clearCookie(SESSION_COOKIE, this.sessions.cookieOptions(req));
  }
}
