import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveriesService } from './deliveries.service.js';
import { ListDeliveriesQuery } from './dto/list-deliveries.query.js';
import { DeliveryDetailView, DeliveryPageView } from './dto/delivery.view.js';

@ApiTags('deliveries')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/deliveries')
@UseGuards(AdminGuard)
export class DeliveriesController {
  constructor(private readonly deliveries: DeliveriesService) {}

  @Get()
  @ApiOkResponse({ type: DeliveryPageView, description: 'deliveries, newest first' })
  list(@Query() query: ListDeliveriesQuery) {
    return this.deliveries.list(query);
  }

  @Get(':id')
  @ApiOkResponse({ type: DeliveryDetailView, description: 'the delivery with its audit trail and, once confirmed, its signed receipt' })
  @ApiNotFoundResponse({ description: 'no such delivery' })
  get(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.get(id);
  }
}
