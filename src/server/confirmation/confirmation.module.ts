import { Module } from '@nestjs/common';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { KeysModule } from '../keys/keys.module.js';
import { ConfirmationListener } from './confirmation.listener.js';
import { ConfirmationService } from './confirmation.service.js';

@Module({
  imports: [DeliveriesModule, KeysModule],
  providers: [ConfirmationService, ConfirmationListener],
  exports: [ConfirmationListener],
})
export class ConfirmationModule {}
