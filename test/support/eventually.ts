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
