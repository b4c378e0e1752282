import { Controller, Get, Header, HttpCode, Param, Post, Query, StreamableFile, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProduces,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Readable } from 'node:stream';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { DeliveriesService, RECEIPT_MEDIA_TYPE } from './deliveries.service.js';
import { DeliveryFilter, IssuedRangeQuery, ListDeliveriesQuery } from './dto/list-deliveries.query.js';
import { DeliveryDetailView, DeliveryPageView } from './dto/delivery.view.js';
import { ContentCompletionView, ContentCountsView, DeliveryReceiptView, ReissuedDeliveryView } from './dto/manager.views.js';

@ApiTags('deliveries')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/deliveries')
@UseGuards(AdminGuard)
export class DeliveriesController {
  constructor(private readonly deliveries: DeliveriesService) {}

  @Get()
  @ApiOkResponse({
    type: DeliveryPageView,
    description: 'one page of the filtered deliveries, newest first unless `sort`/`order` say otherwise',
  })
  @ApiBadRequestResponse({ description: 'a filter, `search`, `sort` or `order` that is not valid' })
  list(@Query() query: ListDeliveriesQuery) {
    return this.deliveries.list(query);
  }

  // Static routes come before ':id'.
  @Get('counts')
  @ApiOkResponse({ type: [ContentCountsView], description: 'deliveries by status, per content' })
  counts(@Query() query: IssuedRangeQuery) {
    return this.deliveries.counts(query);
  }

  @Get('completion')
  @ApiOkResponse({
    type: [ContentCompletionView],
    description: 'per content sent to named recipients (distributions): how many recipients, and how many received it',
  })
  completion() {
    return this.deliveries.completion();
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

  @Get(':id/receipt/file')
  @ApiProduces(RECEIPT_MEDIA_TYPE)
  @ApiOkResponse({
    description:
      'the signed receipt as a file, `<deliveryId>.receipt` (PROTOCOL.md §5, what `dcx` keeps; check it with `dcx verify-receipt`)',
    content: { [RECEIPT_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } } },
  })
  @ApiNotFoundResponse({ description: 'no such delivery, or not confirmed' })
  @Header('Cache-Control', 'private, no-store')
  async receiptFile(@Param('id', ParseDeliveryIdPipe) id: string): Promise<StreamableFile> {
    const { bytes, fileName } = await this.deliveries.receiptFile(id);
    return new StreamableFile(bytes, { type: RECEIPT_MEDIA_TYPE, disposition: `attachment; filename="${fileName}"`, length: bytes.length });
  }

  @Post(':id/reissue')
  @ApiCreatedResponse({ type: ReissuedDeliveryView, description: 'the new delivery of the same content to the same client' })
  @ApiConflictResponse({ description: 'the delivery is not expired or failed, or was already re-issued' })
  @HttpCode(201)
  reissue(@Param('id', ParseDeliveryIdPipe) id: string) {
    return this.deliveries.reissue(id);
  }
}
