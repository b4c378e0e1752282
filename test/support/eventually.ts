/**
 * Polls `read` until `done(value)` holds or `timeoutMs` passes, and returns the last value read:
 * for state the server commits just after answering (e.g. a delivery marked sent once its last byte left).
 */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    value = await read();
  }
  return value;
}

/** Polls `probe` until it returns a value (not null, undefined or false) and returns it; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const value = await eventually(probe, Boolean, timeoutMs, 100);
  if (!value) throw new Error(`timed out waiting for ${what}`);
  return value;
}
