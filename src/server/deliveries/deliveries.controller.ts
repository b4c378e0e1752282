import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveriesService } from './deliveries.service.js';
import { ListDeliveriesQuery } from './dto/list-deliveries.query.js';

@Controller('api/deliveries')
@UseGuards(AdminGuard)
export class DeliveriesController {
  constructor(private readonly deliveries: DeliveriesService) {}

  @Get()
  list(@Query() query: ListDeliveriesQuery) {
    return this.deliveries.list(query);
  }

  @Get(':id')
  get(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.get(id);
  }
}
