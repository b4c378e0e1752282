import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard.js';
import { CreateWebhookDto } from './dto/create-webhook.dto.js';
import { ListAttemptsQuery } from './dto/list-attempts.query.js';
import { WebhooksService } from './webhooks.service.js';

@ApiTags('webhooks')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/webhooks')
@UseGuards(AdminGuard)
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  create(@Body() dto: CreateWebhookDto) {
    return this.webhooks.create(dto);
  }

  @Get()
  list() {
    return this.webhooks.list();
  }

  @Get(':id')
  get(@Param('id', new ParseUUIDPipe()) id: string) {
    return this.webhooks.get(id);
  }

  @Get(':id/attempts')
  attempts(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: ListAttemptsQuery) {
    return this.webhooks.attemptsOf(id, query.limit);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    return this.webhooks.remove(id);
  }
}
