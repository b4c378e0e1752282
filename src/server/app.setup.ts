import { ValidationPipe } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppConfig } from './config/app-config.js';
import { DatabaseUnavailableFilter } from './common/database-unavailable.filter.js';
import { setupOpenApi } from './openapi.js';

/** What every DCX HTTP app needs besides its modules: used by main.ts and by tests that boot the AppModule. */
export function configureApp(app: NestExpressApplication): void {
  app.enableShutdownHooks();
  app.disable('x-powered-by');
  app.set('trust proxy', app.get(AppConfig).trustProxy);
  app.useGlobalFilters(new DatabaseUnavailableFilter(app.get(HttpAdapterHost).httpAdapter));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  setupOpenApi(app);
}
