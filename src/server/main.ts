import 'reflect-metadata';
import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { configureApp } from './app.setup.js';
import { AdminTokenService } from './auth/admin-token.service.js';
import { AppConfig } from './config/app-config.js';

async function bootstrap(): Promise<void> {
  // Logs are buffered until start-up succeeds: a failed start prints one clear line, not Nest's stack trace.
  const app = await NestFactory.create<NestExpressApplication>(AppModule, {
    bufferLogs: true,
    autoFlushLogs: false,
    abortOnError: false,
  });
  app.useLogger(new ConsoleLogger());
  app.flushLogs();
  configureApp(app);

  const config = app.get(AppConfig);
  await app.listen(config.port);
  console.log(
    `DCX listening on http://0.0.0.0:${config.port} (public ${config.publicUrl}), confirmation port ${config.confirmPort}, ` +
      `database: ${config.describeDatabase()}, admin token: ${app.get(AdminTokenService).describeSource()}`,
  );
}

bootstrap().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`dcx: cannot start: ${message}`);
  if (process.env.DCX_DEBUG === '1' && error instanceof Error) console.error(error.stack);
  process.exit(1);
});
