// HTTP for the client's API calls (fetch: publish, trust) and what both HTTP clients share: URL checks,
// failure messages. Bundles download through download/connection.ts, which streams into one buffer.
import { DcxError, messageOf, unreachable, usageError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** An http(s) URL from the command line, or a usage error. */
export function parseHttpUrl(text: string, what = 'URL'): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(`${what} ${JSON.stringify(text)} is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw usageError(`${what} ${JSON.stringify(text)} must be http:// or https://`);
  return url;
}

/** `fetch`, with a connection failure turned into exit 6. */
export async function httpRequest(url: URL | string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw unreachable(`cannot reach ${new URL(url).origin}: ${networkReason(error)}`, error);
  }
}

/** What `httpFailure` needs of a response. */
export interface ResponseLike {
  status: number;
  statusText: string;
  text(): Promise<string>;
}

/** undici hides the useful part ("connect ECONNREFUSED 127.0.0.1:9") in `cause`. */
export function networkReason(error: unknown): string {
  let cause: unknown = error;
  for (let depth = 0; depth < 5 && hasCause(cause); depth++) cause = cause.cause;
  return messageOf(cause);
}

function hasCause(error: unknown): error is { cause: object } {
  return typeof error === 'object' && error !== null && 'cause' in error && typeof error.cause === 'object' && error.cause !== null;
}

/**
 * A non-2xx response as an error: gateway errors and timeouts mean the server is unreachable (6),
 * anything else (not found, forbidden, bad request) is a plain failure (1). Uses the server's message.
 */
export async function httpFailure(response: ResponseLike, doing: string): Promise<DcxError> {
  const detail = await serverMessage(response);
  const text = `${doing} failed: ${response.status} ${response.statusText || 'error'}${detail ? ` (${detail})` : ''}`;
  const code = [502, 503, 504].includes(response.status) ? ExitCode.ServerUnreachable : ExitCode.Failure;
  return new DcxError(code, text, { status: response.status });
}

async function serverMessage(response: ResponseLike): Promise<string> {
  try {
    const text = (await response.text()).slice(0, 2000);
    try {
      const body = JSON.parse(text) as { message?: unknown };
      const message = Array.isArray(body.message) ? body.message.join('; ') : body.message;
      if (typeof message === 'string') return message.replace(/\s+/g, ' ').slice(0, 300);
    } catch {
      // not JSON
    }
    return /<html/i.test(text) ? '' : text.replace(/\s+/g, ' ').trim().slice(0, 300);
  } catch {
    return '';
  }
}
