import { Controller, Get, Header, HttpCode, Param, Post, Query, StreamableFile, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Readable } from 'node:stream';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveriesService } from './deliveries.service.js';
import { DeliveryFilter, IssuedRangeQuery, ListDeliveriesQuery } from './dto/list-deliveries.query.js';
import { DeliveryDetailView, DeliveryPageView } from './dto/delivery.view.js';
import { ContentCountsView, DeliveryReceiptView, ReissuedDeliveryView } from './dto/manager.views.js';

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
  @ApiOkResponse({ type: [ContentCountsView], description: 'deliveries by status, per content' })
  counts(@Query() query: IssuedRangeQuery) {
    return this.deliveries.counts(query);
  }

  @Get('export.csv')
  @ApiOkResponse({ description: 'text/csv of the filtered deliveries, newest first' })
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
  @ApiOkResponse({ type: DeliveryReceiptView, description: 'the server-signed proof of delivery' })
  @ApiNotFoundResponse({ description: 'no such delivery, or not confirmed' })
  receipt(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.receipt(id);
  }

  @Post(':id/reissue')
  @ApiCreatedResponse({ type: ReissuedDeliveryView, description: 'the new delivery of the same content to the same client' })
  @ApiConflictResponse({ description: 'the delivery is not expired or failed, or was already re-issued' })
  @HttpCode(201)
  reissue(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.reissue(id);
  }
}
