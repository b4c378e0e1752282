import { Controller, Get, Logger } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorResult,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { ConfirmationListenerHealthIndicator } from './confirmation-listener.health.js';

const TIMEOUT_MS = 2000;

/**
 * Public liveness/readiness: the database answers a ping and the TCP confirmation receiver accepts
 * connections. 200 when both are up, 503 with the same details when one is not. Reasons are short and
 * fixed: the full error goes to the log, never to the public answer (no hosts, users or URLs).
 */
@ApiTags('observability')
@Controller('health')
export class HealthController {
  private readonly logger = new Logger(HealthController.name);

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly confirmation: ConfirmationListenerHealthIndicator,
  ) {}

  @Get()
  @HealthCheck({ noCache: true, swaggerDocumentation: true })
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.publicResult(this.database.pingCheck('database').withTimeout(TIMEOUT_MS), 'the database did not answer a ping'),
      () =>
        this.publicResult(
          this.confirmation.check('confirmationListener', TIMEOUT_MS),
          'the confirmation listener does not accept connections',
        ),
    ]);
  }

  private async publicResult(check: PromiseLike<HealthIndicatorResult<string>>, reason: string): Promise<HealthIndicatorResult<string>> {
    const result = await check;
    for (const [key, detail] of Object.entries(result)) {
      if (detail.status !== 'down') continue;
      this.logger.warn(`health: ${key} is down: ${String(detail.message ?? 'no reason given')}`);
      result[key] = { status: 'down', message: reason, responseTime: detail.responseTime };
    }
    return result;
  }
}
