import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ConfirmationModule } from '../confirmation/confirmation.module.js';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { ConfirmationListenerHealthIndicator } from './confirmation-listener.health.js';
import { HealthController } from './health.controller.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsGuard } from './metrics.guard.js';
import { MetricsService } from './metrics.service.js';

/** GET /health (terminus) and GET /metrics (prom-client); the access log is set up with the HTTP adapter (src/server/http). */
@Module({
  imports: [
    // HealthController logs a failed check itself, with the reason it keeps out of the public answer.
    TerminusModule.forRoot({ logger: false }),
    DeliveriesModule,
    ConfirmationModule,
  ],
  controllers: [HealthController, MetricsController],
  providers: [ConfirmationListenerHealthIndicator, MetricsService, MetricsGuard],
})
export class ObservabilityModule {}
