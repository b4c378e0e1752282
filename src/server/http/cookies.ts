import type { ServerResponse } from 'node:http';
import { serialize } from 'cookie';

/** The attributes DCX sets on a cookie. */
export interface CookieAttributes {
  httpOnly: boolean;
  sameSite: 'strict' | 'lax';
  path: string;
  secure: boolean;
  maxAgeSeconds?: number;
}

/** Adds a Set-Cookie header (Max-Age only, no Expires, as the session cookie always had). */
export function setCookie(res: ServerResponse, name: string, value: string, attributes: CookieAttributes): void {
  const { maxAgeSeconds, ...rest } = attributes;
  res.appendHeader('Set-Cookie', serialize(name, value, { ...rest, ...(maxAgeSeconds !== undefined && { maxAge: maxAgeSeconds }) }));
}

/** Tells the browser to drop a cookie: empty, Max-Age=0 and an Expires in 1970 for clients that ignore Max-Age. */
export function clearCookie(res: ServerResponse, name: string, attributes: CookieAttributes): void {
  const { httpOnly, sameSite, path, secure } = attributes;
  res.appendHeader('Set-Cookie', serialize(name, '', { httpOnly, sameSite, path, secure, maxAge: 0, expires: new Date(0) }));
}
