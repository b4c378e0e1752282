import type { FastifyRequest } from 'fastify';
import { normalizeAddress } from './ip.js';

/** The requester's IP as the patent's client information; Fastify's request.ip honours TRUST_PROXY. */
export function requesterAddress(req: FastifyRequest): string {
  return normalizeAddress(req.ip ?? req.socket.remoteAddress ?? 'unknown');
}
