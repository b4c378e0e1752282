import { Body, Controller, Get, Header, HttpCode, Param, ParseUUIDPipe, Post, Query, Res, StreamableFile, UseGuards } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { Readable } from 'node:stream';
import { AdminGuard } from '../auth/admin.guard.js';
import { DistributionsService } from './distributions.service.js';
import { EvidenceService } from './evidence.service.js';
import { CreateDistributionDto, DistributionQuery, RecipientsCsvQuery, ResendDto } from './dto/distribution.dto.js';
import { DistributionDetailView, DistributionView } from './dto/distribution.view.js';

@ApiTags('distributions')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/distributions')
@UseGuards(AdminGuard)
export class DistributionsController {
  constructor(
    private readonly distributions: DistributionsService,
    private readonly evidence: EvidenceService,
  ) {}

  @Get(':id/evidence.zip')
  @ApiOkResponse({ description: 'application/zip: receipts/<deliveryId>.receipt, recipients.csv, audit.csv, server-keys.json, README.txt' })
  @ApiNotFoundResponse({ description: 'no such distribution' })
  evidenceZip(@Param('id', new ParseUUIDPipe()) id: string, @Res() res: ServerResponse): Promise<void> {
    return this.evidence.send(id, res);
  }

  @Post()
  @ApiCreatedResponse({ type: DistributionView, description: 'the distribution, every recipient pending' })
  @ApiBadRequestResponse({ description: 'more than 100,000 recipients named, unknown recipients or groups' })
  @ApiNotFoundResponse({ description: 'no such content' })
  @ApiUnprocessableEntityResponse({ description: 'no recipients' })
  create(@Body() dto: CreateDistributionDto) {
    return this.distributions.create(dto);
  }

  @Get()
  @ApiOkResponse({ type: [DistributionView], description: 'distributions, newest first, with their counts' })
  list() {
    return this.distributions.list();
  }

  @Get(':id')
  @ApiOkResponse({ type: DistributionDetailView })
  @ApiNotFoundResponse({ description: 'no such distribution' })
  get(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: DistributionQuery) {
    return this.distributions.get(id, query);
  }

  @Get(':id/recipients.csv')
  @ApiOkResponse({ description: 'text/csv of the recipients and their deliveries' })
  @Header('Cache-Control', 'private, no-store')
  async recipientsCsv(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: RecipientsCsvQuery): Promise<StreamableFile> {
    await this.distributions.found(id);
    return new StreamableFile(Readable.from(this.distributions.recipientsCsv(id, query.status)), {
      type: 'text/csv; charset=utf-8',
      disposition: 'attachment; filename="recipients.csv"',
    });
  }

  @Post(':id/resend')
  @HttpCode(200)
  @ApiOkResponse({ description: '{resent: [{from, to}]}: the deliveries superseded and their new pending ones' })
  @ApiConflictResponse({ description: 'cancelled, content removed, or the recipient already confirmed' })
  resend(@Param('id', new ParseUUIDPipe()) id: string, @Body() dto: ResendDto) {
    return this.distributions.resend(id, dto.recipientId);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: DistributionView, description: 'pending deliveries withdrawn' })
  @ApiConflictResponse({ description: 'already cancelled' })
  cancel(@Param('id', new ParseUUIDPipe()) id: string) {
    return this.distributions.cancel(id);
  }
}
