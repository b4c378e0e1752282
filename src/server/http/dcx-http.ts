import { STATUS_CODES, type Server } from 'node:http';
import { HttpException, type INestApplication } from '@nestjs/common';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import type { Logger } from 'pino';
import proxyAddr from 'proxy-addr';
import { AppConfig } from '../config/app-config.js';
import { PinoNestLogger } from '../observability/logging.js';
import { accessLog } from './access-log.js';
import { bodyParsers } from './body-parsers.js';

/** Express's "trust proxy" test, from TRUST_PROXY (true, a hop count, or addresses/subnets/names as proxy-addr takes them). */
export function compileTrustProxy(setting: boolean | number | string): (address: string, hop: number) => boolean {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return proxyAddr.compile(
    setting
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== ''),
  );
}

/**
 * ExpressAdapter whose errors raised outside Nest's handlers (body-parser's: malformed JSON 400, a body over
 * the limit 413; the router's: a path it cannot decode 400) answer the same JSON as every other error,
 * `{statusCode, error, message}`, not `{statusCode, message}`.
 */
export class DcxExpressAdapter extends ExpressAdapter {
  override mapException(error: unknown): unknown {
    const mapped = super.mapException(error);
    if (mapped instanceof HttpException && typeof mapped.getResponse() === 'string') {
      const status = mapped.getStatus();
      const body = HttpException.createBody(mapped.getResponse() as string, STATUS_CODES[status] ?? 'Error', status);
      return new HttpException(body, status, { cause: error });
    }
    return mapped;
  }
}

/**
 * No time limit on receiving a request (an upload is bounded by MAX_UPLOAD_BYTES, not by how slow its link is),
 * and idle keep-alive connections kept longer than the 60 s of common load balancers: Node's defaults cut both.
 */
function timeouts(server: Server): void {
  server.requestTimeout = 0;
  server.keepAliveTimeout = 72_000;
}

/**
 * The HTTP side of a DCX app (Express), made before Nest builds the app; `configure` applies what needs the
 * validated configuration (TRUST_PROXY, LOG_LEVEL), which exists only once the app does.
 */
export class DcxHttp {
  readonly adapter = new DcxExpressAdapter();

  constructor(readonly logger: Logger) {}

  /** Settings and the middleware every request goes through, in order, before Nest's routes. */
  configure(app: INestApplication): void {
    const config = app.get(AppConfig);
    const express = app as NestExpressApplication;
    this.logger.level = config.logLevel;
    express.set('trust proxy', compileTrustProxy(config.trustProxy));
    // Paths match without regard to case and with or without a trailing slash: Express's defaults, which
    // its router took when the adapter was made. No X-Powered-By.
    express.disable('x-powered-by');
    // No ETag on API answers. Not `false`: that would take the page files' ETags away too (sendFile follows it).
    express.set('etag', () => undefined);
    timeouts(app.getHttpServer() as Server);
    express.use(accessLog(this.logger));
    express.use(...bodyParsers(config.confirmMaxFrameBytes));
  }

  nestLogger(): PinoNestLogger {
    return new PinoNestLogger(this.logger);
  }
}
