import { Controller, Get, Header, HttpCode, Param, Post, Query, StreamableFile, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { Readable } from 'node:stream';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveriesService } from './deliveries.service.js';
import { DeliveryFilter, IssuedRangeQuery, ListDeliveriesQuery } from './dto/list-deliveries.query.js';
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

  // Static routes come before ':id'.
  @Get('counts')
  counts(@Query() query: IssuedRangeQuery) {
    return this.deliveries.counts(query);
  }

  @Get('export.csv')
  @Header('Cache-Control', 'private, no-store')
  exportCsv(@Query() query: DeliveryFilter): StreamableFile {
    return new StreamableFile(Readable.from(this.deliveries.exportCsv(query)), {
      type: 'text/csv; charset=utf-8',
      disposition: 'attachment; filename="deliveries.csv"',
    });
  }

  @Get(':id')
  @ApiOkResponse({ type: DeliveryDetailView, description: 'the delivery with its audit trail and, once confirmed, its signed receipt' })
  @ApiNotFoundResponse({ description: 'no such delivery' })
  get(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.get(id);
  }

  @Get(':id/receipt')
  receipt(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.receipt(id);
  }

  @Post(':id/reissue')
  @HttpCode(201)
  reissue(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.reissue(id);
  }
}
