// The push notice [seed 003]: one signed GET /api/inbox/events held open (server-sent events), read with
// eventsource-parser. Outbound only: the client never listens on a port.
import { createParser, EventSourceParser } from 'eventsource-parser';
import { DcxError, messageOf, unreachable } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { httpRequest, networkReason } from '../http.js';
import { RequestSigner, signedFailure } from '../signed-request.js';

export const EVENTS_PATH = '/api/inbox/events';
/**
 * No byte (not even the 25 s heartbeat) for this long: the connection is taken for dead. A connection a NAT
 * or proxy dropped silently shows no error; only the missing heartbeats tell.
 */
export const STREAM_IDLE_TIMEOUT_MS = 90_000;

export type StreamEvent =
  | { kind: 'retry'; ms: number }
  | { kind: 'waiting'; count: number }
  | { kind: 'bye'; retryMs: number | null; reason: string | null }
  | { kind: 'heartbeat' };

export interface StreamOptions {
  signal: AbortSignal;
  /** Called once the server answered 200 with an event stream. */
  onOpen: () => void;
  onEvent: (event: StreamEvent) => void;
  idleTimeoutMs?: number;
}

/** How a held stream ended (a refusal of this installation, 401/403, is thrown as exit 8 instead). */
export type StreamEnd =
  | { reason: 'closed' }
  /** `why`: `shutdown`, or `replaced` when a newer stream of this installation took this one's place. */
  | { reason: 'bye'; retryMs: number | null; why: string | null }
  | { reason: 'aborted' };

/**
 * Opens the event stream with a fresh signature and feeds its events to `onEvent` until the server closes it,
 * says `bye`, the connection goes quiet for `idleTimeoutMs`, or `signal` aborts. Network failures and 5xx are
 * exit 6 (the caller reconnects); 401/403 are exit 8 (reconnecting would not help).
 */
export async function holdEventStream(signer: RequestSigner, origin: string, options: StreamOptions): Promise<StreamEnd> {
  const url = new URL(EVENTS_PATH, origin);
  const connection = new AbortController();
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  // Cancelling the reader ends a body that is being read at once (aborting the request alone may not).
  const hangUp = () => {
    connection.abort();
    reader?.cancel().catch(() => undefined);
  };
  options.signal.addEventListener('abort', hangUp, { once: true });
  const idleMs = options.idleTimeoutMs ?? STREAM_IDLE_TIMEOUT_MS;
  let idle: NodeJS.Timeout | undefined;
  let quiet = false;
  const touch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      quiet = true;
      hangUp();
    }, idleMs);
  };
  const ended = (): StreamEnd | null => {
    if (options.signal.aborted) return { reason: 'aborted' };
    if (quiet) throw unreachable(`the event stream ${url.href} went quiet for ${idleMs / 1000} s (no heartbeat)`);
    return null;
  };
  try {
    touch();
    reader = (await openStream(signer, url, connection.signal)).getReader();
    const events = eventParser(options.onEvent);
    options.onOpen();
    const decoder = new TextDecoder();
    for (;;) {
      const stop = ended();
      if (stop) return stop;
      const { done, value } = await reader.read();
      if (done) break;
      touch();
      events.parser.feed(decoder.decode(value, { stream: true }));
      const bye = events.bye();
      if (bye) {
        hangUp();
        return bye;
      }
    }
    return ended() ?? { reason: 'closed' };
  } catch (error) {
    const stop = ended();
    if (stop) return stop;
    if (error instanceof DcxError) throw error;
    throw unreachable(`lost the event stream ${url.href}: ${networkReason(error) || messageOf(error)}`, error);
  } finally {
    clearTimeout(idle);
    options.signal.removeEventListener('abort', hangUp);
  }
}

/** The signed GET, fresh signature each time; the event stream's body, or why not. */
async function openStream(signer: RequestSigner, url: URL, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
  const response = await httpRequest(url, {
    method: 'GET',
    headers: { accept: 'text/event-stream', 'cache-control': 'no-store', ...signer.headers('GET', url) },
    redirect: 'manual',
    signal,
  });
  if (!response.ok) throw await signedFailure(response, `opening the event stream ${url.href}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/event-stream') || !response.body) {
    await response.body?.cancel();
    throw new DcxError(ExitCode.Failure, `${url.href} answered ${type || 'no content type'}, not an event stream`);
  }
  return response.body;
}

/** The stream's parser, turning what arrives into StreamEvents; `bye()` is the `bye` once one came. */
function eventParser(onEvent: (event: StreamEvent) => void): { parser: EventSourceParser; bye: () => StreamEnd | null } {
  let bye: StreamEnd | null = null;
  const parser = createParser({
    onRetry: (ms) => onEvent({ kind: 'retry', ms }),
    onComment: () => onEvent({ kind: 'heartbeat' }),
    onEvent: (message) => {
      const data = jsonObject(message.data);
      if (message.event === 'waiting') onEvent({ kind: 'waiting', count: typeof data.count === 'number' ? data.count : 1 });
      else if (message.event === 'bye') {
        const retryMs = typeof data.retryMs === 'number' && Number.isFinite(data.retryMs) ? data.retryMs : null;
        const why = typeof data.reason === 'string' ? data.reason : null;
        bye = { reason: 'bye', retryMs, why };
        onEvent({ kind: 'bye', retryMs, reason: why });
      }
      // Other events are for newer clients: ignored, as EventSource ignores them.
    },
  });
  return { parser, bye: () => bye };
}

function jsonObject(data: string): Record<string, unknown> {
  try {
    const value = JSON.parse(data) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
