// HTTP for the client's API calls (fetch: publish, trust, confirmations) and what both HTTP clients share:
// URL checks, proxies, failure messages. Bundles download through download/connection.ts, which streams
// into one buffer.
import { getProxyForUrl } from 'proxy-from-env';
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';
import { DcxError, messageOf, unreachable, usageError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/**
 * Makes every fetch of this process honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (Node's fetch ignores them):
 * undici's EnvHttpProxyAgent as the global dispatcher. Called once, where the CLI starts.
 */
export function installProxyDispatcher(): void {
  setGlobalDispatcher(new EnvHttpProxyAgent());
}

/** The proxy a request to `url` goes through (HTTPS_PROXY / HTTP_PROXY, NO_PROXY honoured), or null. */
export function proxyFor(url: URL): URL | null {
  const proxy = getProxyForUrl(url.href);
  if (!proxy) return null;
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(proxy) ? proxy : `http://${proxy}`);
  } catch {
    throw usageError(
      `the proxy for ${url.origin} (${JSON.stringify(redactProxy(proxy))}) is not a valid URL; check HTTPS_PROXY / HTTP_PROXY`,
    );
  }
}

/** A proxy URL as messages show it: without its credentials. */
function redactProxy(text: string): string {
  return text.replace(/\/\/[^@/]*@/, '//');
}

/** The proxy refused to open a tunnel to `target` (its answer to CONNECT was `status`): exit 6, saying what to check. */
export function proxyRefused(proxy: URL, target: URL, status: number, statusText = ''): DcxError {
  const auth = status === 407 ? ' (it wants credentials: put them in the proxy URL, http://user:password@proxy:port)' : '';
  return new DcxError(
    ExitCode.ServerUnreachable,
    `the proxy ${proxy.host} refused to connect to ${target.host}: ${status}${statusText ? ` ${statusText}` : ''}${auth}; ` +
      'check HTTPS_PROXY / HTTP_PROXY and NO_PROXY, or ask for the proxy to allow it',
    { status },
  );
}

/** undici's words for a proxy that did not answer CONNECT with 200 (dispatcher/proxy-agent.js). */
const UNDICI_PROXY_REFUSAL = /Proxy response \((\d{3})\) !== 200|Proxy Authentication Required \((407)\)/;

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

/** `fetch`, with a connection failure turned into exit 6 (a proxy's refusal named as such). */
export async function httpRequest(url: URL | string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const target = new URL(url);
    const reason = networkReason(error);
    const refusal = UNDICI_PROXY_REFUSAL.exec(reason);
    const proxy = refusal ? proxyFor(target) : null;
    if (refusal && proxy) throw proxyRefused(proxy, target, Number(refusal[1] ?? refusal[2]));
    throw unreachable(`cannot reach ${target.origin}${viaProxy(target)}: ${reason}`, error);
  }
}

/** ' through the proxy host:port' when requests to `target` go through one. */
export function viaProxy(target: URL): string {
  const proxy = proxyFor(target);
  return proxy ? ` through the proxy ${proxy.host}` : '';
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
