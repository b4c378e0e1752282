import 'reflect-metadata';
import { networkInterfaces } from 'node:os';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { configureApp, DcxHttp } from './app.setup.js';
import { AdminTokenService } from './auth/admin-token.service.js';
import { AppConfig } from './config/app-config.js';
import { createRootLogger } from './observability/logging.js';
import { READY_CONTEXT } from './observability/readable-log.js';

async function bootstrap(): Promise<void> {
  const http = new DcxHttp(createRootLogger());
  // Logs are buffered until the modules are up: a failed start prints one clear line, not Nest's stack trace.
  // No body parser of Nest's own: DcxHttp registers the ones the server uses (limits, error shape).
  const app = await NestFactory.create(AppModule, http.adapter, {
    bufferLogs: true,
    autoFlushLogs: false,
    abortOnError: false,
    bodyParser: false,
  });
  // From here on every log line, Nest's and ours, is a pino JSON line on stdout.
  const logger = http.nestLogger();
  app.useLogger(logger);
  configureApp(app, http);
  app.flushLogs(); // after configureApp set LOG_LEVEL: the start-up lines obey it too

  const config = app.get(AppConfig);
  const host = listenHost();
  await app.listen(config.port, host);
  logger.log(
    `DCX listening on http://${host === '::' ? '[::]' : host}:${config.port} (public ${config.publicUrl}), ` +
      `confirmation port ${config.confirmPort}, ` +
      `database: ${config.describeDatabase()}, admin token: ${app.get(AdminTokenService).describeSource()}`,
    READY_CONTEXT,
  );
}

/**
 * Every address, IPv6 and IPv4: '::' (dual-stack), where the machine has IPv6 at all; else 0.0.0.0.
 * Named explicitly so that a machine without IPv6 still starts.
 */
function listenHost(): string {
  return Object.values(networkInterfaces()).some((addresses) => addresses?.some((address) => address.family === 'IPv6')) ? '::' : '0.0.0.0';
}

bootstrap().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`dcx: cannot start: ${message}`);
  if (process.env.DCX_DEBUG === '1' && error instanceof Error) console.error(error.stack);
  process.exit(1);
});
