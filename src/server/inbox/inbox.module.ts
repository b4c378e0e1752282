import { Module } from '@nestjs/common';
import { ConfirmationModule } from '../confirmation/confirmation.module.js';
import { ContentsModule } from '../contents/contents.module.js';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { RecipientsModule } from '../recipients/recipients.module.js';
import { InboxLeaseSweep } from './inbox-lease.sweep.js';
import { InboxStreamsService } from './inbox-streams.service.js';
import { InboxController } from './inbox.controller.js';
import { InboxRepository } from './inbox.repository.js';
import { InboxService } from './inbox.service.js';

@Module({
  // ConfirmationModule: its ConfirmationService decides the acks of POST /api/inbox/next (see InboxService).
  imports: [ContentsModule, DeliveriesModule, RecipientsModule, ConfirmationModule],
  controllers: [InboxController],
  providers: [InboxRepository, InboxService, InboxStreamsService, InboxLeaseSweep],
})
export class InboxModule {}
