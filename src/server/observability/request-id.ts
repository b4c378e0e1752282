import { randomUUID } from 'node:crypto';

/** The header that carries a request's id, in and out. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

/** What an incoming request id may look like: a UUID, ULID, trace id or similar; no spaces, quotes or control characters. */
const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** The incoming X-Request-Id if there is exactly one and it is well formed, else undefined. */
export function acceptedRequestId(header: string | string[] | undefined): string | undefined {
  return typeof header === 'string' && WELL_FORMED.test(header) ? header : undefined;
}

/** The request's id: the caller's well-formed X-Request-Id, else a fresh UUID. */
export function requestIdFor(header: string | string[] | undefined): string {
  return acceptedRequestId(header) ?? randomUUID();
}
