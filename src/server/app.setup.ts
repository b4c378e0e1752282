import { ValidationPipe, type INestApplication } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DatabaseUnavailableFilter } from './common/database-unavailable.filter.js';
import type { DcxHttp } from './http/dcx-http.js';
import { setupOpenApi } from './openapi.js';

export { compileTrustProxy, DcxHttp } from './http/dcx-http.js';

/** What every DCX HTTP app needs besides its modules: used by main.ts and by tests that boot the AppModule. */
export function configureApp(app: INestApplication, http: DcxHttp): void {
  http.configure(app);
  app.enableShutdownHooks();
  app.useGlobalFilters(new DatabaseUnavailableFilter(app.get(HttpAdapterHost).httpAdapter));
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  setupOpenApi(app);
}
