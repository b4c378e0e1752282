import { Controller, Get, Headers, Param, ParseUUIDPipe, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ACCESS_TOKEN_HEADER, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { requesterAddress } from '../common/requester-address.js';
import { BundlesService } from './bundles.service.js';

/** GET a content's bundle: who may fetch is decided by the content's access policy, not by the admin token. */
@Controller('api/contents')
export class BundlesController {
  constructor(private readonly bundles: BundlesService) {}

  @Get(':id/bundle')
  bundle(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers(CLIENT_KEY_HEADER) clientKey: string | undefined,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    return this.bundles.sendNew({ contentId: id, clientKeyHeader: clientKey, accessToken: accessHeader ?? accessQuery, requesterAddress: requesterAddress(req) }, res);
  }
}

/**
 * One delivery's bundle again (its Content-Location): whole or by Range, for resumed downloads.
 * The content's access policy applies as on the content URL; the unguessable delivery ID names it.
 */
@Controller('api/deliveries')
export class DeliveryBundlesController {
  constructor(private readonly bundles: BundlesService) {}

  @Get(':id/bundle')
  bundle(
    @Param('id', ParseDeliveryIdPipe) id: string,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    return this.bundles.sendExisting(id, accessHeader ?? accessQuery, req, res);
  }
}
