import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { AdminGuard, BEARER } from '../auth/admin.guard.js';
import { matchesHash, sha256Hex } from '../auth/secrets.js';
import { AppConfig } from '../config/app-config.js';

/**
 * GET /metrics: `Authorization: Bearer <METRICS_TOKEN>` when that is configured, or the admin token;
 * anything else is refused exactly as AdminGuard refuses it (401, WWW-Authenticate).
 */
@Injectable()
export class MetricsGuard implements CanActivate {
  private readonly metricsTokenHash: string | undefined;

  constructor(
    config: AppConfig,
    private readonly admin: AdminGuard,
  ) {
    this.metricsTokenHash = config.metricsToken === undefined ? undefined : sha256Hex(config.metricsToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.metricsTokenHash !== undefined) {
      const match = BEARER.exec(context.switchToHttp().getRequest<IncomingMessage>().headers.authorization ?? '');
      if (match !== null && matchesHash(match[1], this.metricsTokenHash)) return true;
    }
    return this.admin.canActivate(context);
  }
}
