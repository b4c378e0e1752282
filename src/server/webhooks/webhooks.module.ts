import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { WebhookAttempt } from './webhook-attempt.entity.js';
import { WebhookDispatcher } from './webhook-dispatcher.js';
import { WebhookJob } from './webhook-job.entity.js';
import { WebhookJobRepository } from './webhook-job.repository.js';
import { Webhook } from './webhook.entity.js';
import { WebhooksController } from './webhooks.controller.js';
import { WebhooksService } from './webhooks.service.js';

/** Webhooks: admin API, and the worker that POSTs the outbox (webhook_jobs) with retries. */
@Module({
  imports: [TypeOrmModule.forFeature([Webhook, WebhookJob, WebhookAttempt]), ScheduleModule.forRoot(), DeliveriesModule],
  controllers: [WebhooksController],
  providers: [WebhooksService, WebhookDispatcher, WebhookJobRepository],
})
export class WebhooksModule {}
