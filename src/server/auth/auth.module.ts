import { Module } from '@nestjs/common';
import { AdminGuard } from './admin.guard.js';
import { AdminTokenService } from './admin-token.service.js';

/** Import it in a feature module to use `@UseGuards(AdminGuard)` there. */
@Module({
  providers: [AdminTokenService, AdminGuard],
  exports: [AdminTokenService, AdminGuard],
})
export class AuthModule {}
