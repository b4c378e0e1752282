import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { AppConfig } from '../config/app-config.js';
import type { CookieAttributes } from '../http/cookies.js';
import { requestCookie, requestProtocol } from '../http/request.js';
import { AdminTokenService } from './admin-token.service.js';

/** Name of the admin session cookie. */
export const SESSION_COOKIE = 'dcx_admin';
/** How long a dashboard login lasts. */
export const SESSION_TTL_SECONDS = 8 * 60 * 60;
/** A header cross-site pages cannot send without a CORS preflight, which DCX never grants. */
export const CSRF_HEADER = 'x-dcx-csrf';

const VERSION = 'v1';
const SHAPE = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** What the guard needs of a request: Node's, whose cookies and protocol the HTTP layer knows (src/server/http). */
export type SessionRequest = Pick<IncomingMessage, 'headers'> & Partial<Pick<IncomingMessage, 'method'>>;

/**
 * Stateless admin sessions for the dashboard: the cookie holds `v1.<expiry>.<nonce>.<HMAC>`, the
 * HMAC-SHA256 keyed from the admin token (see AdminTokenService.sessionKey). Nothing is stored on the
 * server, so every replica accepts it; changing the admin token ends every session. The cookie never
 * holds the token.
 */
@Injectable()
export class AdminSessionService {
  constructor(
    private readonly tokens: AdminTokenService,
    private readonly config: AppConfig,
  ) {}

  /** A fresh session value valid for SESSION_TTL_SECONDS from `now`. */
  issue(now: Date = new Date()): { value: string; expiresAt: Date } {
    const expiry = Math.floor(now.getTime() / 1000) + SESSION_TTL_SECONDS;
    const body = `${VERSION}.${expiry}.${randomBytes(16).toString('base64url')}`;
    return { value: `${body}.${this.mac(body)}`, expiresAt: new Date(expiry * 1000) };
  }

  /** When a presented session value expires, if its MAC is right and it has not expired; else null. */
  verify(value: string | undefined, now: Date = new Date()): Date | null {
    const match = value === undefined ? null : SHAPE.exec(value);
    if (match === null) return null;
    const body = `${VERSION}.${match[1]}.${match[2]}`;
    // Compare the text, not the decoded bytes: base64url's last character has unused bits, and a value
    // differing only there must not verify.
    const expected = Buffer.from(this.mac(body), 'latin1');
    const presented = Buffer.from(match[3], 'latin1');
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) return null;
    const expiresAt = new Date(Number(match[1]) * 1000);
    return expiresAt.getTime() > now.getTime() ? expiresAt : null;
  }

  /** The session value a request carries in its cookie, if any. */
  presented(request: SessionRequest): string | undefined {
    return requestCookie(request as IncomingMessage, SESSION_COOKIE);
  }

  /** HttpOnly, SameSite=Strict, Path=/, Secure when the request came over HTTPS. */
  cookieOptions(request: SessionRequest, maxAgeSeconds?: number): CookieAttributes {
    return {
      httpOnly: true,
      sameSite: 'strict',
      path: '/',
      secure: requestProtocol(request as IncomingMessage) === 'https',
      maxAgeSeconds,
    };
  }

  /**
   * Whether a cookie-authenticated request may change state: safe methods always; otherwise the browser
   * must say it is same-origin (Sec-Fetch-Site), or its Origin must be this server's, or, from clients
   * that send neither, the request must carry the X-DCX-CSRF header.
   */
  mayChangeState(request: SessionRequest): boolean {
    if (!UNSAFE_METHODS.has((request.method ?? 'GET').toUpperCase())) return true;
    const site = header(request, 'sec-fetch-site');
    if (site !== undefined) return site === 'same-origin';
    const origin = header(request, 'origin');
    if (origin !== undefined) return this.ownOrigins(request).includes(origin);
    return header(request, CSRF_HEADER) !== undefined;
  }

  private ownOrigins(request: SessionRequest): string[] {
    const origins = [new URL(this.config.publicUrl).origin];
    const host = header(request, 'host');
    const protocol = requestProtocol(request as IncomingMessage);
    if (host !== undefined && protocol !== undefined) origins.push(`${protocol}://${host}`);
    return origins;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.tokens.sessionKey).update(body, 'utf8').digest('base64url');
  }
}

function header(request: SessionRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
