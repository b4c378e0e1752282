import { CanActivate, createParamDecorator, ExecutionContext, Injectable, SetMetadata, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER, REQUEST_AUTH_SCHEME } from '../../protocol/constants.js';
import { requesterAddress } from '../common/requester-address.js';
import { rawJsonBody } from '../http/body-parsers.js';
import { RequestAuthService, type RecipientPrincipal, type RequestSigner, type SignedHttpRequest } from './request-auth.service.js';

const SIGNED_BY_ANY_KEY = 'dcx:signed-by-any-key';
const PRINCIPAL = Symbol('dcx recipient principal');

type AuthenticatedRequest = IncomingMessage & { originalUrl?: string; [PRINCIPAL]?: RequestSigner | RecipientPrincipal };

/** On a route behind RecipientAuthGuard: a signed request of any key will do, enrolled or not (enrolment). */
export const SignedByAnyKey = () => SetMetadata(SIGNED_BY_ANY_KEY, true);

/**
 * Routes of enrolled client installations: the request must carry DCX-Client-Key and a valid DCX-Auth
 * (see src/protocol/request-auth.ts) of an enrolled, unrevoked installation, or of any key on a
 * `@SignedByAnyKey()` route. 401/403 with the precise reason otherwise, each recorded as a recipient event.
 */
@Injectable()
export class RecipientAuthGuard implements CanActivate {
  constructor(
    private readonly auth: RequestAuthService,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest>();
    const anyKey = this.reflector.getAllAndOverride<boolean | undefined>(SIGNED_BY_ANY_KEY, [context.getHandler(), context.getClass()]);
    const signed = signedHttpRequest(request);
    try {
      request[PRINCIPAL] = anyKey === true ? await this.auth.signer(signed) : await this.auth.installation(signed);
    } catch (error) {
      if (error instanceof UnauthorizedException) http.getResponse<ServerResponse>().setHeader('WWW-Authenticate', REQUEST_AUTH_SCHEME);
      throw error;
    }
    return true;
  }
}

function signedHttpRequest(request: AuthenticatedRequest): SignedHttpRequest {
  return {
    method: request.method ?? 'GET',
    // The path as the client sent it: Express's routers may rewrite req.url, never originalUrl.
    path: request.originalUrl ?? request.url ?? '/',
    body: rawJsonBody(request),
    authHeader: header(request, REQUEST_AUTH_HEADER),
    clientKeyHeader: header(request, CLIENT_KEY_HEADER),
    remoteAddress: requesterAddress(request),
  };
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function principalOf(context: ExecutionContext): RequestSigner | RecipientPrincipal {
  const principal = context.switchToHttp().getRequest<AuthenticatedRequest>()[PRINCIPAL];
  if (principal === undefined) throw new Error('@Installation() or @Signer() on a route without RecipientAuthGuard');
  return principal;
}

/** The enrolled installation behind the request (a route guarded by RecipientAuthGuard). */
export const Installation = createParamDecorator((_data: unknown, context: ExecutionContext): RecipientPrincipal => {
  const principal = principalOf(context);
  if (!('recipientId' in principal)) throw new Error('@Installation() on a @SignedByAnyKey() route: use @Signer()');
  return principal;
});

/** The key that signed the request, enrolled or not (a `@SignedByAnyKey()` route). */
export const Signer = createParamDecorator((_data: unknown, context: ExecutionContext): RequestSigner => principalOf(context));
