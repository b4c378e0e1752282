import { Module } from '@nestjs/common';
import { ContentsModule } from '../contents/contents.module.js';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { RecipientsModule } from '../recipients/recipients.module.js';
import { InboxController } from './inbox.controller.js';
import { InboxRepository } from './inbox.repository.js';
import { InboxService } from './inbox.service.js';

@Module({
  imports: [ContentsModule, DeliveriesModule, RecipientsModule],
  controllers: [InboxController],
  providers: [InboxRepository, InboxService],
})
export class InboxModule {}
