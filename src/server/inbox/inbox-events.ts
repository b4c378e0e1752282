/**
 * The server-sent events of `GET /api/inbox/events` (docs/design/resident-agent.md §2), as bytes: pure functions,
 * so that the stream service only decides who gets what.
 */

/** Why the server closes a stream with `bye`: it shuts down, or a newer stream of the same installation replaced it. */
export type ByeReason = 'shutdown' | 'replaced';

/** The first bytes of every stream: the reconnect delay the agent should use (EventSource honours it too). */
export function retryField(retryMs: number): string {
  return `retry: ${retryMs}\n\n`;
}

/** `waiting`: how many deliveries wait for this installation (in its inbox, not under a live lease). */
export function waitingEvent(count: number): string {
  return `event: waiting\ndata: ${JSON.stringify({ count })}\n\n`;
}

/** A comment line: ignored by EventSource, but traffic that keeps proxies and load balancers from closing the stream. */
export function heartbeatComment(at: Date): string {
  return `: hb ${at.toISOString()}\n\n`;
}

/** The last event before the server closes the stream: wait about `retryMs` (with jitter) before reconnecting. */
export function byeEvent(retryMs: number, reason: ByeReason): string {
  return `event: bye\ndata: ${JSON.stringify({ retryMs, reason })}\n\n`;
}
