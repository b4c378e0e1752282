import type { IncomingMessage } from 'node:http';
import { clientAddress } from '../http/request.js';
import { normalizeAddress } from './ip.js';

/** The requester's IP as the patent's client information, as TRUST_PROXY decides it. */
export function requesterAddress(req: IncomingMessage): string {
  return normalizeAddress(clientAddress(req) ?? 'unknown');
}
