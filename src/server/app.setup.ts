import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { HttpException, ValidationPipe } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { RawServerDefault } from 'fastify';
import type { Logger } from 'pino';
import proxyAddr from 'proxy-addr';
import { AppConfig } from './config/app-config.js';
import { DatabaseUnavailableFilter } from './common/database-unavailable.filter.js';
import { AccessLogController, PinoNestLogger } from './observability/logging.js';
import { REQUEST_ID_HEADER, requestIdFor } from './observability/request-id.js';
import { setupOpenApi } from './openapi.js';
import { findPublicDir } from './pages/public-dir.js';

/** Fastify's "trust proxy" test, from TRUST_PROXY (true, a hop count, or addresses/subnets/names as proxy-addr takes them). */
export function compileTrustProxy(setting: boolean | number | string): (address: string, hop: number) => boolean {
  if (setting === true) return () => true;
  if (setting === false) return () => false;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  return proxyAddr.compile(setting.split(',').map((part) => part.trim()).filter((part) => part !== ''));
}

/**
 * FastifyAdapter whose errors raised by Fastify itself (a malformed JSON body: 400, a body of a type no route
 * reads: 415, a body over the limit: 413) answer the same JSON as every other error,
 * `{statusCode, error, message}`, not `{statusCode, message}`.
 */
export class DcxFastifyAdapter extends FastifyAdapter {
  override mapException(error: unknown): unknown {
    const mapped = super.mapException(error);
    if (mapped instanceof HttpException && typeof mapped.getResponse() === 'string') {
      const status = mapped.getStatus();
      return new HttpException(HttpException.createBody(mapped.getResponse() as string, STATUS_CODES[status] ?? 'Error', status), status, { cause: error });
    }
    return mapped;
  }
}

/**
 * The HTTP side of a DCX app before Nest builds it: Fastify with the root pino logger. TRUST_PROXY and
 * LOG_LEVEL are validated by the config module, which exists only once the app does: configureApp
 * applies them to `proxyTrust` and the logger.
 */
export class DcxHttp {
  private trusted: (address: string, hop: number) => boolean = () => false;
  private readonly accessLog = new AccessLogController();
  readonly adapter: DcxFastifyAdapter;

  constructor(readonly logger: Logger) {
    const requestIdHeader = REQUEST_ID_HEADER.toLowerCase();
    this.adapter = new DcxFastifyAdapter({
      loggerInstance: logger,
      logController: this.accessLog,
      requestIdHeader: false,
      genReqId: (req: IncomingMessage) => requestIdFor(req.headers[requestIdHeader]),
      trustProxy: (address: string, hop: number) => this.trusted(address, hop),
      // As on Express: /admin/ and /Admin reach /admin (route parameters keep their case).
      routerOptions: { ignoreTrailingSlash: true, caseSensitive: false },
      // Uploads are streamed by the multipart interceptor; other bodies are small JSON.
      bodyLimit: 1024 * 1024,
    });
  }

  /** Applies the validated configuration, the plugins and the hooks every request goes through. */
  async configure(app: NestFastifyApplication): Promise<void> {
    const config = app.get(AppConfig);
    const fastify = app.getHttpAdapter().getInstance();
    // LOG_LEVEL on the root logger and on Fastify's child of it (made with the adapter).
    this.logger.level = config.logLevel;
    fastify.log.level = config.logLevel;
    this.trusted = compileTrustProxy(config.trustProxy);
    // JSON bodies as before: an empty one (a bodyless POST or DELETE sent with a JSON content type, as many
    // HTTP clients do) is `{}`, not a 400; anything else goes through Fastify's own parser.
    const parseJson = fastify.getDefaultJsonParser('error', 'error');
    app.useBodyParser<RawServerDefault>('application/json', { bodyLimit: fastify.initialConfig.bodyLimit }, (request, body, done) => {
      if (body.length === 0) return done(null, {});
      parseJson(request, body as unknown as string, done);
    });
    // The dashboard's session cookie; the pages' files (sendFile only: no path is served by itself).
    await app.register(fastifyCookie);
    await app.register(fastifyStatic, { root: findPublicDir(), serve: false });
    const accessLog = this.accessLog;
    fastify.addHook('onRequest', (request, reply, done) => {
      // On the Node response, so that bundle responses (written to it directly) carry it too.
      reply.raw.setHeader(REQUEST_ID_HEADER, request.id);
      // Node knows the peer's address only while the socket is open, unless it was read before: read now,
      // so that the access line of a request whose client has gone still names it.
      void request.raw.socket?.remoteAddress;
      // Fastify writes the access line when the response finishes; a response the client cut off (a
      // download, an event stream, an upload) never does, and gets its line here.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) accessLog.requestAborted(request, reply);
      });
      done();
    });
  }

  nestLogger(): PinoNestLogger {
    return new PinoNestLogger(this.logger);
  }
}

/** What every DCX HTTP app needs besides its modules: used by main.ts and by tests that boot the AppModule. */
export async function configureApp(app: NestFastifyApplication, http: DcxHttp): Promise<void> {
  await http.configure(app);
  app.enableShutdownHooks();
  app.useGlobalFilters(new DatabaseUnavailableFilter(app.get(HttpAdapterHost).httpAdapter));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  setupOpenApi(app);
}
