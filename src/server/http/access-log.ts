import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';
import { REQUEST_ID_HEADER, requestIdFor } from '../observability/request-id.js';

const REQUEST_ID = REQUEST_ID_HEADER.toLowerCase();

/**
 * The access log (pino-http): one line per request, written when the response has finished
 * (`request completed`) or when the client left before it did (`request aborted`: a download cut off, an
 * event stream closed, an upload abandoned). `req` and `res` go through the root logger's serializers
 * (see observability/logging.ts), which keep the access-line fields only: no header ever reaches a line.
 * The line carries the request's id as `reqId`; the id is echoed in X-Request-Id.
 *
 * Make it once LOG_LEVEL is applied to `logger`: its child takes the level the logger has then.
 */
export function accessLog(logger: Logger): HttpLogger {
  return pinoHttp({
    logger,
    // The root logger's serializers as they are (pino-http would otherwise wrap them in its own).
    wrapSerializers: false,
    // Lines logged through req.log carry reqId only; the access line carries req and res as well.
    quietReqLogger: true,
    genReqId: (req: IncomingMessage, res: ServerResponse) => {
      const id = requestIdFor(req.headers[REQUEST_ID]);
      // On the Node response, so that responses written to it directly (bundles) carry it too.
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    customLogLevel: (_req, res, error) => (res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : error ? 'error' : 'info'),
    customSuccessMessage: (_req, res) => completion(res),
    customErrorMessage: (_req, res, error) => (madeUp(res, error) ? completion(res) : 'request errored'),
    customErrorObject: (_req, res, error, fields: Record<string, unknown>) => (madeUp(res, error) ? { ...fields, err: undefined } : fields),
  });
}

function completion(res: ServerResponse): string {
  return res.writableFinished ? 'request completed' : 'request aborted';
}

/**
 * pino-http makes up an Error for every 5xx answer; a 5xx the app answered is a completed request
 * (at error level), and only an error the response itself emitted is a `request errored` line.
 */
function madeUp(res: ServerResponse, error: Error): boolean {
  return error.message === `failed with status code ${res.statusCode}`;
}
