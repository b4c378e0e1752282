import { Module } from '@nestjs/common';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { KeysModule } from '../keys/keys.module.js';
import { ConfirmationListener } from './confirmation.listener.js';
import { ConfirmationRepository } from './confirmation.repository.js';
import { ConfirmationService } from './confirmation.service.js';
import { ConfirmationsController } from './confirmations.controller.js';

@Module({
  imports: [DeliveriesModule, KeysModule],
  controllers: [ConfirmationsController],
  providers: [ConfirmationService, ConfirmationRepository, ConfirmationListener],
  exports: [ConfirmationListener],
})
export class ConfirmationModule {}
