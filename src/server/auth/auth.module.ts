import { Global, Module } from '@nestjs/common';
import { AdminGuard } from './admin.guard.js';
import { AdminTokenService } from './admin-token.service.js';

/** Global: any controller can use `@UseGuards(AdminGuard)` without importing this module. */
@Global()
@Module({
  providers: [AdminTokenService, AdminGuard],
  exports: [AdminTokenService, AdminGuard],
})
export class AuthModule {}
