import { Body, Controller, Get, Post, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiGoneResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requesterAddress } from '../common/requester-address.js';
import { EnrolDto } from './dto/enrolment.dto.js';
import { EnrolmentView } from './dto/enrolment.view.js';
import { InstallationOfRecipientView } from './dto/recipient.view.js';
import { EnrolmentService } from './enrolment.service.js';
import { Installation, RecipientAuthGuard, SignedByAnyKey, Signer } from './recipient-auth.guard.js';
import { RecipientsService } from './recipients.service.js';
import type { RecipientPrincipal, RequestSigner } from './request-auth.service.js';

/**
 * The installation's own routes: enrolment (signed by its key, not enrolled yet) and what it is enrolled as.
 * Registered before RecipientsController, so that `GET me` is matched before the admin's `GET :id`.
 */
@ApiTags('recipients')
@ApiHeader({ name: 'DCX-Client-Key', required: true, description: 'base64url of the installation’s X25519 public key' })
@ApiHeader({ name: 'DCX-Auth', required: true, description: 'DCX1 kid=…, ts=…, nonce=…, mac=… (src/protocol/request-auth.ts)' })
@ApiUnauthorizedResponse({ description: 'missing, malformed, stale, replayed or wrongly signed request' })
@Controller('api/recipients')
@UseGuards(RecipientAuthGuard)
export class EnrolmentController {
  constructor(
    private readonly enrolment: EnrolmentService,
    private readonly recipients: RecipientsService,
  ) {}

  @Get('me')
  @ApiOkResponse({ type: InstallationOfRecipientView, description: 'the recipient this installation is enrolled to' })
  me(@Installation() installation: RecipientPrincipal) {
    return this.recipients.whoAmI(installation);
  }

  @Post('enrol')
  @SignedByAnyKey()
  @ApiCreatedResponse({ type: EnrolmentView, description: 'the installation is enrolled' })
  @ApiOkResponse({ type: EnrolmentView, description: 'this key had enrolled with this code already: the same answer' })
  @ApiBadRequestResponse({ description: 'not an enrolment code, or the code names no recipient and no name was given' })
  @ApiNotFoundResponse({ description: 'unknown enrolment code' })
  @ApiConflictResponse({ description: 'the code was used by another installation, or this key is enrolled already' })
  @ApiGoneResponse({ description: 'the code expired' })
  async enrol(
    @Body() dto: EnrolDto,
    @Signer() signer: RequestSigner,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    const { created, view } = await this.enrolment.enrol(dto, signer, requesterAddress(req));
    // 201 or 200 decided by the service: Nest would overwrite a status set on a passthrough response.
    res.statusCode = created ? 201 : 200;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(view));
  }
}
