import { Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import cookieParser from 'cookie-parser';
import { AdminGuard } from './admin.guard.js';
import { AdminSessionService } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';
import { SessionController } from './session.controller.js';
import { SessionService } from './session.service.js';

/**
 * Global: any controller can use `@UseGuards(AdminGuard)` without importing this module.
 * Parses cookies on every route, for the dashboard's session cookie.
 */
@Global()
@Module({
  controllers: [SessionController],
  providers: [AdminTokenService, AdminSessionService, AdminGuard, SessionService],
  exports: [AdminTokenService, AdminSessionService, AdminGuard],
})
export class AuthModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(cookieParser()).forRoutes('*');
  }
}
