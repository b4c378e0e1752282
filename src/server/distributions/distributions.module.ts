import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { ContentsModule } from '../contents/contents.module.js';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { KeysModule } from '../keys/keys.module.js';
import { DistributionSweepService } from './distribution-sweep.service.js';
import { DistributionRepository } from './distribution.repository.js';
import { DistributionsController } from './distributions.controller.js';
import { DistributionsService } from './distributions.service.js';
import { EvidenceService } from './evidence.service.js';

@Module({
  imports: [ScheduleModule.forRoot(), ContentsModule, DeliveriesModule, KeysModule],
  controllers: [DistributionsController],
  providers: [DistributionRepository, DistributionsService, DistributionSweepService, EvidenceService],
  exports: [DistributionRepository],
})
export class DistributionsModule {}
