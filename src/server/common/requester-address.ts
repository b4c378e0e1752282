import type { Request } from 'express';
import { normalizeAddress } from './ip.js';

/** The requester's IP as the patent's client information; Express's req.ip honours the trust-proxy setting. */
export function requesterAddress(req: Request): string {
  return normalizeAddress(req.ip ?? req.socket.remoteAddress ?? 'unknown');
}
