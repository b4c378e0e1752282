import { unescape } from 'node:querystring';
import type { LoggerService } from '@nestjs/common';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { DestinationStream } from 'pino';
import { ReadableLogStream } from './readable-log.js';

export const REDACTED = '[redacted]';

/**
 * Top-level fields pino blanks (application log objects are flat); `req` and `res` need no path: their
 * serializers below keep no header or query object. No wildcard path: one makes pino walk every field of every line.
 */
const REDACT_PATHS: readonly string[] = ['accessToken', 'token', 'authorization', 'password', 'secret'];

/** Query parameter names whose values are credentials: `access` (bundle access token) and anything named like a token. */
const SECRET_QUERY_NAME = /^(?:access|.*token.*)$/i;
const QUERY_PARAMETER = /([?&])([^=&#]*)=([^&#]*)/g;

/**
 * The URL with the values of credential query parameters replaced: `/x?access=s3cret` → `/x?access=[redacted]`.
 * Names are compared decoded, as the server reads them (`?%61ccess=` is `access`).
 */
export function redactUrl(url: string): string {
  if (!url.includes('=')) return url;
  return url.replace(QUERY_PARAMETER, (parameter, separator: string, name: string) =>
    SECRET_QUERY_NAME.test(decodedName(name)) ? `${separator}${name}=${REDACTED}` : parameter,
  );
}

/** A query parameter name as the server's query parser reads it ('+' is a space; a malformed escape stays as it is). */
function decodedName(name: string): string {
  return unescape(name.replaceAll('+', ' '));
}

/** What an access line says of a request: no headers (so no credentials), the URL with credential values blanked. */
interface AccessRequest {
  id?: unknown;
  method?: string;
  url?: string;
  remoteAddress?: string;
  userAgent?: string;
}

/** What an access line says of a response. */
interface AccessResponse {
  statusCode?: number;
  contentLength?: string;
}

/** What a request logged as `req` may hold: a Node request (with Express's `ip` and `originalUrl`), or a plain object. */
interface LoggedRequest {
  id?: unknown;
  method?: string;
  url?: unknown;
  originalUrl?: unknown;
  headers?: Record<string, string | string[] | undefined>;
  ip?: string;
  socket?: { remoteAddress?: string };
}

/** What a response logged as `res` may hold: a Node response, or a plain object. */
interface LoggedResponse {
  statusCode?: number;
  getHeader?: (name: string) => number | string | string[] | undefined;
}

/**
 * pino's `req` serializer: the access-line fields of whatever is logged as `req` (a Node request, as the
 * access log logs it, or a plain object), never its headers, query, socket or anything else it holds.
 */
function serializeRequest(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const request = value as LoggedRequest;
  const url = request.originalUrl ?? request.url;
  const userAgent = request.headers?.['user-agent'];
  const line: AccessRequest = {
    id: request.id,
    method: request.method,
    url: typeof url === 'string' ? redactUrl(url) : undefined,
    remoteAddress: remoteAddressOf(request),
    userAgent: typeof userAgent === 'string' ? userAgent : undefined,
  };
  return line;
}

/** pino's `res` serializer: status and length of a Node response or a plain object. */
function serializeResponse(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const response = value as LoggedResponse;
  const length = typeof response.getHeader === 'function' ? response.getHeader('content-length') : undefined;
  const line: AccessResponse = { statusCode: response.statusCode, contentLength: length === undefined ? undefined : String(length) };
  return line;
}

/**
 * The requester's address as TRUST_PROXY decides it (Express's `ip`), else the socket's. The access log
 * serializes the request when it arrives, while the socket is open: Node forgets the peer once it closes.
 */
function remoteAddressOf(request: LoggedRequest): string | undefined {
  try {
    return request.ip ?? request.socket?.remoteAddress;
  } catch {
    return undefined;
  }
}

/** pino's options for the one root logger (the access log's and Nest's): JSON lines, credentials redacted. */
export function rootLoggerOptions(): LoggerOptions {
  return {
    level: 'info',
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    // Whatever is logged as `req` or `res` keeps only the access-line fields, never headers or the socket.
    serializers: { req: serializeRequest, res: serializeResponse },
  };
}

/** The largest write of log lines to stdout (see createRootLogger). */
const LOG_WRITE_BYTES = 4096;

/**
 * The process's root logger. It is made before the app (the HTTP adapter needs it); LOG_LEVEL is applied
 * to it once the configuration is validated (see configureApp), and request loggers are its children.
 */
export function createRootLogger(destination?: DestinationStream): Logger {
  if (destination) return pino(rootLoggerOptions(), destination);
  // Asynchronous writes (one per burst of lines; pino flushes the rest at exit) of at most 4 KiB: sonic-boom
  // flattens the string it gathers at every line, so a smaller write copies less (docs/PERFORMANCE.md, Logging).
  const stdout = pino.destination({ dest: 1, sync: false, maxWrite: LOG_WRITE_BYTES });
  return pino(rootLoggerOptions(), process.stdout.isTTY ? new ReadableLogStream(stdout) : stdout);
}

type NestLevel = 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
const PINO_LEVEL: Record<NestLevel, 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal'> = {
  log: 'info',
  error: 'error',
  warn: 'warn',
  debug: 'debug',
  verbose: 'trace',
  fatal: 'fatal',
};

/**
 * Nest's Logger (`new Logger(Context).log(...)`, and Nest's own lines) written as JSON lines by the root
 * pino logger, with the Nest context as `context`. An Error or a stack goes into `err`/`stack`.
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(nestLevel: NestLevel, message: unknown, params: unknown[]): void {
    const level = PINO_LEVEL[nestLevel];
    if (!this.logger.isLevelEnabled(level)) return;
    // Nest passes the context last; error() may pass a stack before it.
    const context = params.length > 0 && typeof params[params.length - 1] === 'string' ? (params.pop() as string) : undefined;
    const fields: Record<string, unknown> = context === undefined ? {} : { context };
    if (nestLevel === 'error' && typeof params[0] === 'string' && params[0].includes('\n    at ')) fields.stack = params.shift();
    if (message instanceof Error) {
      fields.err = message;
      this.logger[level](fields, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level]({ ...fields, ...(message as Record<string, unknown>) });
    } else {
      this.logger[level](fields, String(message));
    }
  }
}
