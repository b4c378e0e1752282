import { Body, Controller, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard.js';
import { CreateEnrolmentCodeDto } from './dto/enrolment.dto.js';
import { CreatedEnrolmentCodeView } from './dto/enrolment.view.js';
import { ListRecipientEventsQuery, ListRecipientsQuery, UpdateRecipientDto } from './dto/recipient.dto.js';
import {
  RecipientDetailView,
  RecipientEventView,
  RecipientPageView,
  RecipientView,
  RevokedInstallationView,
} from './dto/recipient.view.js';
import { EnrolmentService } from './enrolment.service.js';
import { ParseFingerprintPipe } from './parse-fingerprint.pipe.js';
import { RecipientsService } from './recipients.service.js';

@ApiTags('recipients')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/recipients')
@UseGuards(AdminGuard)
export class RecipientsController {
  constructor(
    private readonly recipients: RecipientsService,
    private readonly enrolment: EnrolmentService,
  ) {}

  @Post('enrolment-codes')
  @ApiCreatedResponse({ type: CreatedEnrolmentCodeView, description: 'the code, shown this once' })
  @ApiBadRequestResponse({ description: 'a bad duration, more than 30 days, or recipientId with name, email or labels' })
  @ApiNotFoundResponse({ description: 'recipientId names no recipient' })
  createCode(@Body() dto: CreateEnrolmentCodeDto) {
    return this.enrolment.createCode(dto);
  }

  @Get()
  @ApiOkResponse({ type: RecipientPageView })
  list(@Query() query: ListRecipientsQuery) {
    return this.recipients.list(query);
  }

  // Static routes come before ':id'.
  @Post('installations/:fingerprint/revoke')
  @ApiOkResponse({ type: RevokedInstallationView, description: 'revoked (now, or earlier: the same answer)' })
  @ApiNotFoundResponse({ description: 'no such installation' })
  @HttpCode(200)
  revoke(@Param('fingerprint', ParseFingerprintPipe) fingerprint: string) {
    return this.recipients.revoke(fingerprint);
  }

  @Get(':id')
  @ApiOkResponse({ type: RecipientDetailView })
  @ApiNotFoundResponse({ description: 'no such recipient' })
  get(@Param('id', new ParseUUIDPipe()) id: string) {
    return this.recipients.get(id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: RecipientView })
  @ApiNotFoundResponse({ description: 'no such recipient' })
  update(@Param('id', new ParseUUIDPipe()) id: string, @Body() dto: UpdateRecipientDto) {
    return this.recipients.update(id, dto);
  }

  @Get(':id/events')
  @ApiOkResponse({ type: [RecipientEventView], description: 'newest first' })
  @ApiNotFoundResponse({ description: 'no such recipient' })
  events(@Param('id', new ParseUUIDPipe()) id: string, @Query() query: ListRecipientEventsQuery) {
    return this.recipients.events(id, query);
  }
}
