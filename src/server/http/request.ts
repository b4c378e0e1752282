import type { IncomingMessage } from 'node:http';
import { parse as parseCookies } from 'cookie';
import type { Request } from 'express';

/**
 * What the HTTP adapter (Express) knows of a request beyond Node's IncomingMessage. Controllers and
 * services take Node's request and ask here, so that no adapter type leaves src/server/http.
 */
type AdaptedRequest = Partial<Pick<Request, 'ip' | 'protocol'>>;

/** The requester's IP address as TRUST_PROXY decides it (Express's req.ip), else the socket's peer. */
export function clientAddress(req: IncomingMessage): string | undefined {
  return (req as AdaptedRequest).ip ?? req.socket?.remoteAddress;
}

/** 'https' when the request came over TLS, or through a trusted proxy that says so (X-Forwarded-Proto). */
export function requestProtocol(req: IncomingMessage): string | undefined {
  return (req as AdaptedRequest).protocol;
}

/**
 * A cookie the request carries, parsed from its Cookie header when asked: only the admin routes read one,
 * so no other request (a bundle) pays for parsing cookies.
 */
export function requestCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  return header === undefined ? undefined : parseCookies(header)[name];
}
