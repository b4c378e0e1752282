import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ContentsModule } from '../contents/contents.module.js';
import { KeysModule } from '../keys/keys.module.js';
import { BundleWriter } from './bundle-writer.js';
import { BundlesController, DeliveryBundlesController } from './bundles.controller.js';
import { BundlesService } from './bundles.service.js';
import { DeliveriesController } from './deliveries.controller.js';
import { DeliveriesService } from './deliveries.service.js';
import { DeliverySealer } from './delivery-sealer.js';
import { DeliveryEventsBus } from './delivery-events.bus.js';
import { DeliveryEvent } from './delivery-event.entity.js';
import { DeliveryEventRepository } from './delivery-event.repository.js';
import { Delivery } from './delivery.entity.js';
import { DeliveryRepository } from './delivery.repository.js';
import { ExpiryService } from './expiry.service.js';
import { UnitOfWork } from './unit-of-work.js';

@Module({
  imports: [TypeOrmModule.forFeature([Delivery, DeliveryEvent]), ScheduleModule.forRoot(), ContentsModule, KeysModule],
  controllers: [BundlesController, DeliveryBundlesController, DeliveriesController],
  providers: [
    DeliveriesService,
    DeliverySealer,
    DeliveryEventsBus,
    UnitOfWork,
    DeliveryRepository,
    DeliveryEventRepository,
    BundlesService,
    BundleWriter,
    ExpiryService,
  ],
  exports: [DeliveriesService, BundlesService, DeliveryEventsBus, UnitOfWork, DeliveryRepository, DeliveryEventRepository],
})
export class DeliveriesModule {}
