import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { KeysModule } from '../keys/keys.module.js';
import { EnrolmentController } from './enrolment.controller.js';
import { EnrolmentRepository } from './enrolment.repository.js';
import { EnrolmentService } from './enrolment.service.js';
import { NoncePruner } from './nonce-pruner.js';
import { RecipientAuthGuard } from './recipient-auth.guard.js';
import { RecipientEventRepository } from './recipient-events.repository.js';
import { RecipientsController } from './recipients.controller.js';
import { RecipientsRepository } from './recipients.repository.js';
import { RecipientsService } from './recipients.service.js';
import { RequestAuthRepository } from './request-auth.repository.js';
import { RequestAuthService } from './request-auth.service.js';

/**
 * Recipients (people), their enrolled installations and the signed requests of those. Another module's
 * controller can take `@UseGuards(RecipientAuthGuard)` and `@Installation()` by importing this module.
 */
@Module({
  imports: [ScheduleModule.forRoot(), KeysModule, DeliveriesModule],
  controllers: [EnrolmentController, RecipientsController],
  providers: [
    RequestAuthService,
    RequestAuthRepository,
    RecipientAuthGuard,
    NoncePruner,
    RecipientEventRepository,
    EnrolmentRepository,
    EnrolmentService,
    RecipientsRepository,
    RecipientsService,
  ],
  exports: [RequestAuthService, RecipientAuthGuard, RecipientEventRepository, RecipientsRepository],
})
export class RecipientsModule {}
