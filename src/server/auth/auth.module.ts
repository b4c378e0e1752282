import { Global, Module } from '@nestjs/common';
import { AdminGuard } from './admin.guard.js';
import { AdminSessionService } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';
import { SessionController } from './session.controller.js';
import { SessionService } from './session.service.js';

/**
 * Global: any controller can use `@UseGuards(AdminGuard)` without importing this module.
 * The session cookie is read by the HTTP layer (requestCookie, src/server/http/request.ts).
 */
@Global()
@Module({
  controllers: [SessionController],
  providers: [AdminTokenService, AdminSessionService, AdminGuard, SessionService],
  exports: [AdminTokenService, AdminSessionService, AdminGuard],
})
export class AuthModule {}
