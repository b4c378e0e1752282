import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ServerKeysService, type WellKnownDocument } from './server-keys.service.js';
import { WellKnownDto } from './well-known.dto.js';

/** Public: what a client needs to pin this server and reach its confirmation port. */
@ApiTags('keys')
@Controller('.well-known')
export class WellKnownController {
  constructor(private readonly keys: ServerKeysService) {}

  @Get('dcx')
  @ApiOkResponse({ type: WellKnownDto, description: 'what a client needs to pin this server and reach its confirmation port' })
  @Header('Cache-Control', 'public, max-age=300')
  dcx(): WellKnownDocument {
    return this.keys.wellKnown();
  }
}
