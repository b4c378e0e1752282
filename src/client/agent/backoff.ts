// When the agent reconnects to the event stream: exponential backoff with full jitter (AWS architecture
// blog, "Exponential Backoff And Jitter"), so that agents dropped together by a server restart come back
// spread over the whole window instead of all at once.

/** The server's suggested reconnect delay until it has said one (`retry:`), as INBOX_RECONNECT_MS defaults. */
export const DEFAULT_RECONNECT_MS = 5_000;
/** No wait grows beyond this (the contract's cap). */
export const MAX_RECONNECT_MS = 5 * 60_000;
/** Never sooner than this, however the dice fall: a reconnect loop must not spin. */
export const MIN_RECONNECT_MS = 250;
/** 2^this is the largest factor; beyond it the cap applies anyway and the shift would overflow. */
const MAX_EXPONENT = 20;

/** A random number in [0, 1): Math.random, or a fixed sequence in tests. */
export type Random = () => number;

/**
 * The wait before reconnect number `failures + 1`: uniform over [MIN_RECONNECT_MS, min(cap, base·2^failures)].
 * `failures` counts the attempts that failed since the stream last worked (0 after a clean end or a `bye`).
 */
export function reconnectDelay(failures: number, baseMs: number, random: Random = Math.random, capMs = MAX_RECONNECT_MS): number {
  const base = Math.max(MIN_RECONNECT_MS, baseMs);
  const window = Math.min(capMs, base * 2 ** Math.min(Math.max(0, failures), MAX_EXPONENT));
  return Math.round(MIN_RECONNECT_MS + random() * Math.max(0, window - MIN_RECONNECT_MS));
}

/** The reconnect policy's state: the server's last suggestion and the failures since the stream last worked. */
export class Backoff {
  private failures = 0;

  constructor(
    private baseMs = DEFAULT_RECONNECT_MS,
    private readonly random: Random = Math.random,
  ) {}

  /** The server's `retry:` field (or a `bye`'s retryMs): the base of every later wait. */
  suggest(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.baseMs = ms;
  }

  /** The stream opened and the server answered: the next loss starts from the base again. */
  succeeded(): void {
    this.failures = 0;
  }

  /** The wait after a failed or lost connection; each call widens the next window. */
  next(): number {
    return reconnectDelay(this.failures++, this.baseMs, this.random);
  }

  get base(): number {
    return this.baseMs;
  }
}
