import { randomBytes, randomFillSync } from 'node:crypto';

/**
 * Bytes of the CSPRNG for nonces, salts, secrets and IDs. Each randomBytes() call costs a few
 * microseconds whatever its size and a bundle needs four small draws, so they are served from a block
 * filled 4 KiB at a time (as Node's randomUUID does). Served bytes are copied out and wiped from the
 * block, so no secret lingers there after it was handed out.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let served = POOL_SIZE;

export function secureRandomBytes(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`not a byte count: ${size}`);
  if (size > POOL_SIZE) return randomBytes(size);
  if (served + size > POOL_SIZE) {
    randomFillSync(pool);
    served = 0;
  }
  // A buffer of its own, not a slice of Node's shared pool: secrets sit next to nothing else.
  const bytes = Buffer.allocUnsafeSlow(size);
  pool.copy(bytes, 0, served, served + size);
  pool.fill(0, served, served + size);
  served += size;
  return bytes;
}
