import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/app-config.js';
import { REQUEST_ID_HEADER, requestIdFor } from './request-id.js';

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

/** What pino-std-serializers makes of a request and a response, as far as the access line uses it. */
interface SerializedRequest {
  id?: unknown;
  method?: string;
  url?: string;
  headers?: Record<string, string | string[] | undefined>;
  remoteAddress?: string;
}
interface SerializedResponse {
  statusCode?: number;
  headers?: Record<string, unknown>;
}

/**
 * The completed-request line holds what an access log holds (method, URL with credential values blanked,
 * peer, user agent, status, length), not every header: header credentials never reach the line, and no
 * request pays for serialising and redacting whole header objects (measured on the 10 KiB bundle path).
 */
export const accessLogSerializers = {
  req: ({ id, method, url, headers, remoteAddress }: SerializedRequest) => ({
    id,
    method,
    url: typeof url === 'string' ? redactUrl(url) : url,
    remoteAddress,
    userAgent: headers?.['user-agent'],
  }),
  res: ({ statusCode, headers }: SerializedResponse) => ({ statusCode, contentLength: headers?.['content-length'] }),
};

/**
 * nestjs-pino options: JSON lines at LOG_LEVEL, one line per HTTP request with its id (the caller's
 * well-formed X-Request-Id, else a fresh UUID, echoed in the response), credentials redacted.
 */
export function loggerParams(config: AppConfig): Params {
  return {
    pinoHttp: {
      level: config.logLevel,
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const id = requestIdFor(req.headers[REQUEST_ID_HEADER.toLowerCase()]);
        res.setHeader(REQUEST_ID_HEADER, id);
        return id;
      },
      // Lines logged while handling a request carry its id; the request-completed line carries req and res.
      quietReqLogger: true,
      serializers: accessLogSerializers,
      customLogLevel: (_req, res, error) => (error !== undefined || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    },
  };
}
