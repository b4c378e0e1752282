import { ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { PUBLIC_KEY_SIZE } from '../../protocol/constants.js';
import { ProtocolError } from '../../protocol/errors.js';
import { fingerprint } from '../../protocol/keys.js';
import { checkSignedRequest, parseRequestAuth, requestAuthKey, type RequestAuthFields } from '../../protocol/request-auth.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { RecipientEventRepository } from './recipient-events.repository.js';
import { RequestAuthRepository, type NonceAndInstallation } from './request-auth.repository.js';

/** What the guard hands over of one HTTP request. */
export interface SignedHttpRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  body: Buffer;
  authHeader: string | undefined;
  clientKeyHeader: string | undefined;
  remoteAddress: string;
}

/** The key that signed a request, enrolled or not. */
export interface RequestSigner {
  fingerprint: string;
  publicKey: Buffer;
}

/** An enrolled, unrevoked installation and its recipient. */
export interface RecipientPrincipal extends RequestSigner {
  recipientId: string;
}

/** Why a request is refused, and the key it named (when it named a readable one). */
interface Refusal {
  status: 401 | 403;
  reason: string;
  fingerprint: string | null;
}

/**
 * Decides whether a signed request comes from the key it names (MAC, fresh timestamp, unused nonce) and,
 * for the routes of enrolled clients, from an installation that is enrolled and not revoked. Every refusal
 * is a `request-refused` recipient event.
 */
@Injectable()
export class RequestAuthService {
  constructor(
    private readonly keys: ServerKeysService,
    private readonly nonces: RequestAuthRepository,
    private readonly events: RecipientEventRepository,
  ) {}

  /** The installation that signed the request: enrolled and not revoked. */
  async installation(request: SignedHttpRequest): Promise<RecipientPrincipal> {
    const { signer, found } = await this.signedOnce(request);
    const refuse = (status: 401 | 403, reason: string) => this.refuse(request, { status, reason, fingerprint: signer.fingerprint });
    if (found.recipientId === null) return refuse(401, 'this installation is not enrolled');
    if (found.revokedAt !== null) return refuse(403, `this installation was revoked on ${found.revokedAt.toISOString()}`);
    return { ...signer, recipientId: found.recipientId };
  }

  /** The key that signed the request, enrolled or not (the enrolment route). */
  async signer(request: SignedHttpRequest): Promise<RequestSigner> {
    return (await this.signedOnce(request)).signer;
  }

  /** A request whose MAC is right, timestamp fresh and nonce new (now taken), with its key's installation. */
  private async signedOnce(request: SignedHttpRequest): Promise<{ signer: RequestSigner; found: NonceAndInstallation }> {
    const verified = this.verify(request);
    if ('reason' in verified) return this.refuse(request, verified);
    const { signer, fields } = verified;
    const found = await this.nonces.takeNonce(fields.nonce, signer.fingerprint);
    if (!found.fresh) return this.refuse(request, { status: 401, reason: 'nonce already used', fingerprint: signer.fingerprint });
    return { signer, found };
  }

  private async refuse(request: SignedHttpRequest, refusal: Refusal): Promise<never> {
    await this.events.append({
      type: 'request-refused',
      fingerprint: refusal.fingerprint,
      reason: refusal.reason,
      remoteAddress: request.remoteAddress,
      detail: { method: request.method, path: request.path.slice(0, 512) },
    });
    throw refusal.status === 403 ? new ForbiddenException(refusal.reason) : new UnauthorizedException(refusal.reason);
  }

  /** The checks that need no database: headers, server key id, timestamp, MAC. */
  private verify(request: SignedHttpRequest): { signer: RequestSigner; fields: RequestAuthFields } | Refusal {
    const clientKey = parseClientKey(request.clientKeyHeader);
    const keyFingerprint = Buffer.isBuffer(clientKey) ? fingerprint(clientKey) : null;
    const refuse = (reason: string): Refusal => ({ status: 401, reason, fingerprint: keyFingerprint });
    if (request.authHeader === undefined || request.authHeader === '') return refuse('missing DCX-Auth');
    let fields: RequestAuthFields;
    try {
      fields = parseRequestAuth(request.authHeader);
    } catch (error) {
      if (error instanceof ProtocolError) return refuse(error.message);
      throw error;
    }
    if (!Buffer.isBuffer(clientKey)) return refuse(clientKey);
    const keys = this.keys.byKeyId(fields.keyId);
    if (keys === undefined) return refuse(`unknown server key id ${fields.keyId}; run dcx trust`);
    let secret: Buffer;
    try {
      secret = this.keys.clientSealSecret(keys, clientKey);
    } catch {
      return refuse('DCX-Client-Key is not a usable X25519 public key');
    }
    const problem = checkSignedRequest(requestAuthKey(secret, clientKey), fields, request);
    if (problem !== null) return refuse(problem);
    return { signer: { fingerprint: fingerprint(clientKey), publicKey: clientKey }, fields };
  }
}

/** The raw key, or why the header is not one. */
function parseClientKey(header: string | undefined): Buffer | string {
  if (header === undefined || header === '') return 'missing DCX-Client-Key';
  const key = /^[A-Za-z0-9_-]+$/.test(header) ? Buffer.from(header, 'base64url') : Buffer.alloc(0);
  return key.length === PUBLIC_KEY_SIZE ? key : `DCX-Client-Key must be the base64url of a ${PUBLIC_KEY_SIZE}-byte X25519 public key`;
}
