import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard.js';
import { CreateWebhookDto } from './dto/create-webhook.dto.js';
import { ListAttemptsQuery } from './dto/list-attempts.query.js';
import { CreatedWebhookView, WebhookAttemptView, WebhookDetailView, WebhookView } from './dto/webhook.view.js';
import { WebhooksService } from './webhooks.service.js';

@ApiTags('webhooks')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/webhooks')
@UseGuards(AdminGuard)
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiCreatedResponse({ type: CreatedWebhookView })
  create(@Body() dto: CreateWebhookDto) {
    return this.webhooks.create(dto);
  }

  @Get()
  @ApiOkResponse({ type: [WebhookView] })
  list() {
    return this.webhooks.list();
  }

  @Get(':id')
  @ApiOkResponse({ type: WebhookDetailView })
  get(@Param('id', new ParseUUIDPipe()) id: string) {
    return this.webhooks.get(id);
  }

  @Get(':id/attempts')
  @ApiOkResponse({ type: [WebhookAttemptView] })
  attempts(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: ListAttemptsQuery) {
    return this.webhooks.attemptsOf(id, query.limit);
  }

  @Delete(':id')
  @ApiNoContentResponse({ description: 'removed' })
  @HttpCode(204)
  remove(@Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    return this.webhooks.remove(id);
  }
}
