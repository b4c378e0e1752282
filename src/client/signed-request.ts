// Requests of an enrolled installation, signed with its key (src/protocol/request-auth.ts): the inbox, the
// enrolment, the download of a personal link. Each request gets a fresh timestamp and nonce.
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../protocol/constants.js';
import { ClientIdentity } from '../protocol/keys.js';
import { clientRequestAuthKey, signRequest } from '../protocol/request-auth.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome, Enrolment, PinnedServer } from './home.js';
import { httpFailure, httpRequest, ResponseLike } from './http.js';

/** Signs the requests of this installation to one pinned server, and to its origin only. */
export class RequestSigner {
  private readonly key: Buffer;

  constructor(
    private readonly identity: ClientIdentity,
    readonly server: PinnedServer,
  ) {
    this.key = clientRequestAuthKey(identity.privateKey, identity.publicKey, Buffer.from(server.sealKey, 'base64url'));
  }

  /** The signer for an origin this installation is enrolled at, or null when it is not enrolled there. */
  static async forEnrolledOrigin(home: DcxHome, origin: string): Promise<{ signer: RequestSigner; enrolment: Enrolment } | null> {
    const enrolment = await home.enrolments().findByOrigin(origin);
    if (!enrolment) return null;
    const pin = await home.pins().findByOrigin(enrolment.origin);
    if (!pin) {
      throw new DcxError(
        ExitCode.Failure,
        `enrolled at ${enrolment.origin}, but its server key is no longer pinned; run \`dcx enrol ${enrolment.origin} --code <code>\` again`,
      );
    }
    return { signer: new RequestSigner(await home.identity(), pin), enrolment };
  }

  /**
   * DCX-Client-Key and a fresh DCX-Auth over method, path and query as sent, and body. A URL on another
   * origin (a redirect) gets the client key only: a signature is for the pinned server alone.
   */
  headers(method: string, url: URL, body?: Buffer): Record<string, string> {
    const headers: Record<string, string> = { [CLIENT_KEY_HEADER]: this.identity.publicKey.toString('base64url') };
    if (url.origin !== this.server.origin) return headers;
    headers[REQUEST_AUTH_HEADER] = signRequest(this.key, this.server.keyId, { method, path: `${url.pathname}${url.search}`, body });
    return headers;
  }

  /** A signed JSON API call (fetch); connection failures are exit 6. Redirects are not followed: they would go unsigned. */
  async json(method: 'GET' | 'POST', url: URL, body?: unknown): Promise<Response> {
    const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers(method, url, bytes) };
    if (bytes) headers['content-type'] = 'application/json';
    return httpRequest(url, { method, headers, body: bytes, redirect: 'manual' });
  }
}

/**
 * A refusal of this installation by the server (401 not enrolled or badly signed, 403 revoked or
 * addressed to another recipient) is exit 8; any other failure as `httpFailure` says.
 */
export async function signedFailure(response: ResponseLike, doing: string, hint = ''): Promise<DcxError> {
  const error = await httpFailure(response, doing);
  if (response.status !== 401 && response.status !== 403) return error;
  return new DcxError(ExitCode.Refused, `${error.message}${hint}`, { cause: error, status: response.status });
}
