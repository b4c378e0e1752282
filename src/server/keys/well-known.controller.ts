import { Controller, Get, Header } from '@nestjs/common';
import { ServerKeysService, type WellKnownDocument } from './server-keys.service.js';

/** Public: what a client needs to pin this server and reach its confirmation port. */
@Controller('.well-known')
export class WellKnownController {
  constructor(private readonly keys: ServerKeysService) {}

  @Get('dcx')
  @Header('Cache-Control', 'public, max-age=300')
  dcx(): WellKnownDocument {
    return this.keys.wellKnown();
  }
}
