import { Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminSessionService, SESSION_COOKIE, SESSION_TTL_SECONDS } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';
import type { SessionView } from './session.dto.js';

/** Login, current session and logout for the dashboard (cookie handling on the Fastify reply, @fastify/cookie). */
@Injectable()
export class SessionService {
  constructor(
    private readonly tokens: AdminTokenService,
    private readonly sessions: AdminSessionService,
  ) {}

  login(token: string, req: FastifyRequest, res: FastifyReply): void {
    if (!this.tokens.verify(token)) throw new UnauthorizedException('wrong admin token');
    const { value } = this.sessions.issue();
    res.setCookie(SESSION_COOKIE, value, this.sessions.cookieOptions(req, SESSION_TTL_SECONDS));
    res.header('Cache-Control', 'no-store');
  }

  current(req: FastifyRequest): SessionView {
    const expiresAt = req.headers.authorization === undefined ? this.sessions.verify(this.sessions.presented(req)) : null;
    return { authenticated: true, expiresAt: expiresAt?.toISOString() ?? null };
  }

  /** Clears the cookie. Sessions are stateless: a copied cookie value stays valid until it expires. */
  logout(req: FastifyRequest, res: FastifyReply): void {
    res.clearCookie(SESSION_COOKIE, this.sessions.cookieOptions(req));
  }
}
