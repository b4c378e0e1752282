import { Module } from '@nestjs/common';
import { ServerKeysService } from './server-keys.service.js';
import { WellKnownController } from './well-known.controller.js';

@Module({
  controllers: [WellKnownController],
  providers: [ServerKeysService],
  exports: [ServerKeysService],
})
export class KeysModule {}
