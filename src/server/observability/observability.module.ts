import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import { AppConfig } from '../config/app-config.js';
import { ConfirmationModule } from '../confirmation/confirmation.module.js';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { ConfirmationListenerHealthIndicator } from './confirmation-listener.health.js';
import { HealthController } from './health.controller.js';
import { loggerParams } from './logging.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsGuard } from './metrics.guard.js';
import { MetricsService } from './metrics.service.js';

/** JSON logs (nestjs-pino), GET /health (terminus) and GET /metrics (prom-client). */
@Module({
  imports: [
    LoggerModule.forRootAsync({ inject: [AppConfig], useFactory: loggerParams }),
    // HealthController logs a failed check itself, with the reason it keeps out of the public answer.
    TerminusModule.forRoot({ logger: false }),
    DeliveriesModule,
    ConfirmationModule,
  ],
  controllers: [HealthController, MetricsController],
  providers: [ConfirmationListenerHealthIndicator, MetricsService, MetricsGuard],
})
export class ObservabilityModule {}
