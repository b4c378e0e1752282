import { UnsupportedMediaTypeException } from '@nestjs/common';
import express, { type RequestHandler } from 'express';
import type { IncomingMessage } from 'node:http';
import typeIs from 'type-is';
import { CONFIRMATION_MEDIA_TYPE } from '../../protocol/constants.js';

/** The largest JSON or form body; uploads are streamed by the multipart interceptor, never through this. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * What the server reads a body as: JSON, a form, plain text, a confirmation frame (POST /api/confirmations),
 * and multipart (read by the upload routes only).
 */
const READABLE_TYPES = [
  'application/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'text/plain',
  CONFIRMATION_MEDIA_TYPE,
];

/**
 * The body parsers every request goes through, in order: a body of a type no route reads is 415; JSON
 * (an empty body with a JSON content type, as many HTTP clients send on a bodyless POST, is `{}`), forms
 * and text up to BODY_LIMIT_BYTES (413 beyond); a JSON body's bytes are kept for signed requests (rawJsonBody);
 * a confirmation frame's bytes as they came, up to `maxFrameBytes` (CONFIRM_MAX_FRAME_BYTES, as on the TCP port).
 * Their errors answer the usual JSON (see DcxExpressAdapter).
 */
export function bodyParsers(maxFrameBytes: number): RequestHandler[] {
  return [
    refuseUnreadableBodies,
    express.json({ limit: BODY_LIMIT_BYTES, reviver: refusePrototypeKeys, verify: keepRawBody }),
    express.urlencoded({ limit: BODY_LIMIT_BYTES, extended: false }),
    express.text({ limit: BODY_LIMIT_BYTES }),
    express.raw({ type: CONFIRMATION_MEDIA_TYPE, limit: maxFrameBytes }),
  ];
}

/**
 * The bytes of a confirmation POST (empty when it has none); 415 for a body of another type, which the
 * parsers above read as something else.
 */
export function confirmationBody(req: IncomingMessage & { body?: unknown }): Buffer {
  if (typeIs.hasBody(req) && !typeIs(req, [CONFIRMATION_MEDIA_TYPE]))
    throw new UnsupportedMediaTypeException(`a confirmation is sent as ${CONFIRMATION_MEDIA_TYPE}`);
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

const RAW_BODY = Symbol('dcx raw body');
type WithRawBody = IncomingMessage & { [RAW_BODY]?: Buffer };

/** A signed request's MAC covers the body's bytes as sent, which JSON.parse does not keep. */
function keepRawBody(req: IncomingMessage, _res: unknown, body: Buffer): void {
  (req as WithRawBody)[RAW_BODY] = body;
}

/** The bytes of a JSON request's body as received; empty for a request without one (or of another type). */
export function rawJsonBody(req: IncomingMessage): Buffer {
  return (req as WithRawBody)[RAW_BODY] ?? Buffer.alloc(0);
}

const refuseUnreadableBodies: RequestHandler = (req, _res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const type = req.headers['content-type'];
  // Without a Content-Type only an actual body is refused: a bodyless POST often says Content-Length: 0.
  if (type === undefined) return next(isEmpty(req) ? undefined : new UnsupportedMediaTypeException('a request body needs a Content-Type'));
  if (!typeIs.hasBody(req) || typeIs(req, READABLE_TYPES)) return next();
  next(new UnsupportedMediaTypeException(`Unsupported Media Type: ${type}`));
};

function isEmpty(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] === undefined && (length === undefined || length === '0');
}

/**
 * A `__proto__` key, or a `constructor` holding a `prototype`, is refused (400) rather than parsed: copied into
 * a DTO, either would change the object's prototype.
 */
function refusePrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null && 'prototype' in value)) {
    throw new SyntaxError('Object contains forbidden prototype property');
  }
  return value;
}
