import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { AdminTokenService } from './auth/admin-token.service.js';
import { AppConfig } from './config/app-config.js';

async function bootstrap(): Promise<void> {
  // Logs are buffered until the modules are up: a failed start prints one clear line, not Nest's stack trace.
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    bufferLogs: true,
    autoFlushLogs: false,
    abortOnError: false,
  });
  // From here on every log line, Nest's and ours, is a pino JSON line on stdout.
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.flushLogs();
  configureApp(app);

  const config = app.get(AppConfig);
  await app.listen(config.port);
  logger.log(
    `DCX listening on http://0.0.0.0:${config.port} (public ${config.publicUrl}), confirmation port ${config.confirmPort}, ` +
      `database: ${config.describeDatabase()}, admin token: ${app.get(AdminTokenService).describeSource()}`,
    'DCX',
  );
}

bootstrap().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`dcx: cannot start: ${message}`);
  if (process.env.DCX_DEBUG === '1' && error instanceof Error) console.error(error.stack);
  process.exit(1);
});
