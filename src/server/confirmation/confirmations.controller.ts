import { Controller, Post, Req, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConsumes,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ANSWER_MEDIA_TYPE, CONFIRMATION_MEDIA_TYPE } from '../../protocol/constants.js';
import { requesterAddress } from '../common/requester-address.js';
import { confirmationBody } from '../http/body-parsers.js';
import { httpAnswer } from './confirmation-http.js';
import { ConfirmationService } from './confirmation.service.js';

const FRAME_SCHEMA = { type: 'string', format: 'binary' } as const;

/** [89] The confirmation receiver on the web port, for clients whose TCP confirmation port is blocked. */
@ApiTags('confirmations')
@Controller('api/confirmations')
export class ConfirmationsController {
  constructor(private readonly confirmations: ConfirmationService) {}

  @Post()
  @ApiOperation({
    summary: 'confirm a delivery over HTTP(S): the confirmation frame [50] exactly as sent to the TCP confirmation port',
    description: 'No credential: the frame is sealed with the delivery’s own secret. Answered by the same receiver as the TCP port.',
  })
  @ApiConsumes(CONFIRMATION_MEDIA_TYPE)
  @ApiBody({ description: 'one confirmation frame (docs/PROTOCOL.md §4), at most CONFIRM_MAX_FRAME_BYTES', schema: FRAME_SCHEMA })
  @ApiProduces(ANSWER_MEDIA_TYPE)
  @ApiOkResponse({ description: 'an answer frame: accepted (with the receipt), already confirmed, or a refusal', schema: FRAME_SCHEMA })
  @ApiBadRequestResponse({ description: 'the body is not one confirmation frame: a "malformed" answer frame' })
  @ApiPayloadTooLargeResponse({ description: 'the body is larger than CONFIRM_MAX_FRAME_BYTES' })
  @ApiUnsupportedMediaTypeResponse({ description: `the body is not ${CONFIRMATION_MEDIA_TYPE}` })
  @ApiServiceUnavailableResponse({ description: 'a "try later" answer frame, with Retry-After' })
  async confirm(@Req() req: IncomingMessage, @Res() res: ServerResponse): Promise<void> {
    const answer = await this.confirmations.handleBody(confirmationBody(req), requesterAddress(req));
    const { status, headers, body } = httpAnswer(answer);
    res.writeHead(status, headers).end(body);
  }
}
