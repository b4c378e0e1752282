import { Body, Controller, Get, Head, HttpCode, Param, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiForbiddenResponse,
  ApiGoneResponse,
  ApiOkResponse,
  ApiProduces,
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiResponse,
  ApiSecurity,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BUNDLE_MEDIA_TYPE } from '../../protocol/constants.js';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { requesterAddress } from '../common/requester-address.js';
import { Installation, RecipientAuthGuard } from '../recipients/recipient-auth.guard.js';
import type { RecipientPrincipal } from '../recipients/request-auth.service.js';
import { InboxNextDto } from './dto/next.dto.js';
import { InboxService, NextView } from './inbox.service.js';

@ApiTags('inbox')
@ApiSecurity('dcx-auth')
@ApiUnauthorizedResponse({ description: 'unsigned, badly signed or not an enrolled installation' })
@Controller('api/inbox')
@UseGuards(RecipientAuthGuard)
export class InboxController {
  constructor(private readonly inbox: InboxService) {}

  @Get()
  @ApiOkResponse({
    description:
      '{items: [{deliveryId, distributionId, contentId, name, size, mediaType, sha256, note, dueAt, bundleUrl, leaseExpiresAt}]}',
  })
  list(@Installation() principal: RecipientPrincipal) {
    return this.inbox.list(principal);
  }

  /** Declared before `:id/bundle` only for readability: the paths cannot capture each other. */
  @Get('events')
  @ApiProduces('text/event-stream')
  @ApiOkResponse({
    description:
      'server-sent events: `retry:`, `waiting` {count} on connect and whenever a delivery becomes waiting, `: hb` heartbeats, `bye` {retryMs, reason}',
  })
  events(@Installation() principal: RecipientPrincipal, @Req() req: IncomingMessage, @Res() res: ServerResponse): void {
    this.inbox.openEvents(principal, req, res);
  }

  @Post('next')
  @HttpCode(200)
  @ApiOkResponse({ description: '{acked: null | {deliveryId, status, answer}, next: null | {<inbox item>, leaseExpiresAt}, waiting}' })
  @ApiBadRequestResponse({ description: 'a malformed body, or an ack whose confirmation confirms another delivery' })
  @ApiForbiddenResponse({ description: 'the acked delivery is addressed to another recipient' })
  @ApiNotFoundResponse({ description: 'the acked delivery is not in your inbox' })
  next(@Installation() principal: RecipientPrincipal, @Body() body: InboxNextDto, @Req() req: IncomingMessage): Promise<NextView> {
    return this.inbox.next(principal, body, requesterAddress(req));
  }

  /** HEAD before GET: Express would otherwise run GET for HEAD (and seal the delivery). */
  @Head(':id/bundle')
  head(
    @Installation() principal: RecipientPrincipal,
    @Param('id', ParseDeliveryIdPipe) id: string,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.inbox.head(principal, id, requesterAddress(req), res);
  }

  @Get(':id/bundle')
  @ApiProduces(BUNDLE_MEDIA_TYPE)
  @ApiOkResponse({
    description: 'the bundle sealed to this installation (sealed on the first pull)',
    schema: { type: 'string', format: 'binary' },
  })
  @ApiResponse({ status: 206, description: 'a byte range (Range, If-Range)' })
  @ApiForbiddenResponse({ description: 'addressed to another recipient' })
  @ApiConflictResponse({ description: 'pulled by another installation of the same recipient' })
  @ApiGoneResponse({ description: 'withdrawn, superseded or expired' })
  bundle(
    @Installation() principal: RecipientPrincipal,
    @Param('id', ParseDeliveryIdPipe) id: string,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.inbox.send(principal, id, requesterAddress(req), req, res);
  }
}
