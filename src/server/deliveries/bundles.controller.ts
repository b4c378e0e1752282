import {
  applyDecorators,
  BadRequestException,
  Controller,
  Get,
  Head,
  Headers,
  Param,
  ParseUUIDPipe,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiForbiddenResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ACCESS_TOKEN_HEADER, BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { ParseDeliveryIdPipe } from '../common/parse-delivery-id.pipe.js';
import { requesterAddress } from '../common/requester-address.js';
import { BundlesService } from './bundles.service.js';

/** The access token, from the header or the one `?access=` value; a repeated query parameter is a client mistake (400). */
function accessToken(header: string | undefined, query: unknown): string | undefined {
  if (header !== undefined) return header;
  if (query !== undefined && typeof query !== 'string')
    throw new BadRequestException('give the access token once, as ?access=<token> or the DCX-Access-Token header');
  return query;
}

/** What both bundle GETs say of access and errors in the OpenAPI description. */
function BundleAccessDocs(): MethodDecorator {
  return applyDecorators(
    ApiSecurity('access-token'),
    ApiQuery({
      name: 'access',
      required: false,
      description: 'the access token of a token-access content, instead of the DCX-Access-Token header',
    }),
    ApiProduces(BUNDLE_MEDIA_TYPE),
    ApiNotFoundResponse({ description: 'no such content or delivery' }),
    ApiForbiddenResponse({ description: 'token-access content without the right access token' }),
  );
}

/** GET a content's bundle: who may fetch is decided by the content's access policy, not by the admin token. */
@ApiTags('bundles')
@Controller('api/contents')
export class BundlesController {
  constructor(private readonly bundles: BundlesService) {}

  /** HEAD: declared before GET, which Express would otherwise run for HEAD (and issue a delivery). */
  @Head(':id/bundle')
  head(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: unknown,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.bundles.headNew(id, accessToken(accessHeader, accessQuery), res);
  }

  @Get(':id/bundle')
  @BundleAccessDocs()
  @ApiHeader({
    name: 'DCX-Client-Key',
    required: false,
    description: 'base64url X25519 public key of the client: the plug-in data is sealed so that only it can open it',
  })
  @ApiOkResponse({
    description: 'a new delivery: the .dcx bundle (headers DCX-Delivery-Id, Content-Location of the delivery bundle URL)',
    schema: { type: 'string', format: 'binary' },
  })
  bundle(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Headers(CLIENT_KEY_HEADER) clientKey: string | undefined,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: unknown,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.bundles.sendNew(
      {
        contentId: id,
        clientKeyHeader: clientKey,
        accessToken: accessToken(accessHeader, accessQuery),
        requesterAddress: requesterAddress(req),
      },
      res,
    );
  }
}

/**
 * One delivery's bundle again (its Content-Location): whole or by Range, for resumed downloads.
 * The content's access policy applies as on the content URL; the unguessable delivery ID names it.
 */
@ApiTags('bundles')
@Controller('api/deliveries')
export class DeliveryBundlesController {
  constructor(private readonly bundles: BundlesService) {}

  /** HEAD: the whole bundle's headers; streams nothing and leaves the delivery as it is. */
  @Head(':id/bundle')
  head(
    @Param('id', ParseDeliveryIdPipe) id: string,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: unknown,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.bundles.headExisting(id, accessToken(accessHeader, accessQuery), res);
  }

  @Get(':id/bundle')
  @BundleAccessDocs()
  @ApiOkResponse({ description: "the same delivery's bundle, byte for byte; issues nothing", schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 206, description: 'the requested byte range (Range, If-Range)', schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 416, description: 'the range is not satisfiable' })
  bundle(
    @Param('id', ParseDeliveryIdPipe) id: string,
    @Headers(ACCESS_TOKEN_HEADER) accessHeader: string | undefined,
    @Query('access') accessQuery: unknown,
    @Req() req: IncomingMessage,
    @Res() res: ServerResponse,
  ): Promise<void> {
    return this.bundles.sendExisting(id, accessToken(accessHeader, accessQuery), req, res);
  }
}
