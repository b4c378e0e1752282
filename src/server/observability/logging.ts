import type { LoggerService } from '@nestjs/common';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { DestinationStream } from 'pino';

export const REDACTED = '[redacted]';

/**
 * Paths pino blanks in every log line: credentials in request and response headers, the bundle
 * access token in the query, and token-like fields of application log objects.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["dcx-access-token"]',
  'req.query.access',
  'req.query.token',
  'req.query.access_token',
  'res.headers["set-cookie"]',
  'accessToken',
  'token',
  'authorization',
  '*.accessToken',
  '*.token',
  '*.authorization',
];

/** Query parameters whose values are credentials: `access` (bundle access token) and anything named like a token. */
const SECRET_QUERY_VALUE = /([?&](?:access|[^=&#]*token[^=&#]*)=)[^&#]*/gi;

/** The URL with the values of credential query parameters replaced: `/x?access=s3cret` → `/x?access=[redacted]`. */
export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY_VALUE, `$1${REDACTED}`);
}

/** pino's options for the one root logger (Fastify's and Nest's): JSON lines, credentials redacted. */
export function rootLoggerOptions(): LoggerOptions {
  return {
    level: 'info',
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    // The access line builds its own req and res objects (logCompletedRequest); these replace
    // Fastify's default serializers, which would drop the id and user agent.
    serializers: { req: (req: unknown) => req, res: (res: unknown) => res },
  };
}

/**
 * The process's root logger. It is made before the app (the HTTP adapter needs it); LOG_LEVEL is applied
 * to it once the configuration is validated (see configureApp), and request loggers are its children.
 */
export function createRootLogger(destination?: DestinationStream): Logger {
  return destination ? pino(rootLoggerOptions(), destination) : pino(rootLoggerOptions());
}

/**
 * Fastify's request log lines: one access line per request, written when the response is done (none
 * when it arrives). The line holds what an access log holds (method, URL with credential values blanked,
 * peer, user agent, status, length), not every header: header credentials never reach it, and no request
 * pays for serialising and redacting whole header objects (measured on the 10 KiB bundle path). It is
 * written with the request's child logger, so it carries `reqId`.
 */
export class AccessLogController extends LogController {
  override incomingRequest(): void {
    // Only the completed line: its status and length say what the incoming line would.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const statusCode = reply.statusCode;
    const level = error || statusCode >= 500 ? 'error' : statusCode >= 400 ? 'warn' : 'info';
    if (!(request.log as Logger).isLevelEnabled(level)) return;
    // Bundle responses set their headers on the Node response (see BundlesService), the others on the reply.
    const contentLength = reply.getHeader('content-length') ?? reply.raw.getHeader('content-length');
    request.log[level](
      {
        req: { id: request.id, method: request.method, url: redactUrl(request.url), remoteAddress: request.ip, userAgent: request.headers['user-agent'] },
        res: { statusCode, contentLength: contentLength === undefined ? undefined : String(contentLength) },
        responseTime: Math.round(reply.elapsedTime * 1000) / 1000,
        ...(error ? { err: error } : {}),
      },
      error ? 'request errored' : 'request completed',
    );
  }
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
