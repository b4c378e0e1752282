import { Module } from '@nestjs/common';
import { DeliveriesModule } from '../deliveries/deliveries.module.js';
import { DeliveryEventsController } from './delivery-events.controller.js';
import { DeliveryStreamService } from './delivery-stream.service.js';

/** The admin dashboard's server side: live delivery events (SSE). The page itself is served by PagesModule. */
@Module({
  imports: [DeliveriesModule],
  controllers: [DeliveryEventsController],
  providers: [DeliveryStreamService],
})
export class DashboardModule {}
