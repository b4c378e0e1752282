import { MAX_STRING_BYTES } from './constants.js';
import { ProtocolError } from './errors.js';

/** Big-endian serializer in the style of pg-protocol's Writer: grows once, writes in place. */
export class BufferWriter {
  private buffer: Buffer;
  private offset = 0;

  constructor(initialSize = 256) {
    this.buffer = Buffer.allocUnsafe(initialSize);
  }

  private ensure(size: number): void {
    if (this.buffer.length - this.offset >= size) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + size));
    this.buffer.copy(next, 0, 0, this.offset);
    this.buffer = next;
  }

  addUInt8(value: number): this {
    this.ensure(1);
    this.offset = this.buffer.writeUInt8(value, this.offset);
    return this;
  }

  addUInt16(value: number): this {
    this.ensure(2);
    this.offset = this.buffer.writeUInt16BE(value, this.offset);
    return this;
  }

  addUInt32(value: number): this {
    this.ensure(4);
    this.offset = this.buffer.writeUInt32BE(value, this.offset);
    return this;
  }

  /** Milliseconds, sizes: exact up to 2^53. */
  addUInt64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a safe unsigned integer: ${value}`);
    this.ensure(8);
    this.offset = this.buffer.writeBigUInt64BE(BigInt(value), this.offset);
    return this;
  }

  /** Fixed-size field: the caller's constant says how long it must be. */
  addFixed(bytes: Buffer, size: number): this {
    if (bytes.length !== size) throw new RangeError(`field must be ${size} bytes, got ${bytes.length}`);
    return this.addBytes(bytes);
  }

  addBytes(bytes: Buffer): this {
    this.ensure(bytes.length);
    bytes.copy(this.buffer, this.offset);
    this.offset += bytes.length;
    return this;
  }

  /** UTF-8 string behind a 1-byte length. */
  addShortString(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > 0xff) throw new ProtocolError('TOO_LARGE', `string longer than 255 bytes`);
    return this.addUInt8(bytes.length).addBytes(bytes);
  }

  /** UTF-8 string behind a 2-byte length. */
  addString(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > MAX_STRING_BYTES) throw new ProtocolError('TOO_LARGE', `string longer than ${MAX_STRING_BYTES} bytes`);
    return this.addUInt16(bytes.length).addBytes(bytes);
  }

  get length(): number {
    return this.offset;
  }

  /** Writes a UInt32 at an earlier position (the total-length prefix once the size is known). */
  patchUInt32(position: number, value: number): this {
    this.buffer.writeUInt32BE(value, position);
    return this;
  }

  flush(): Buffer {
    return this.buffer.subarray(0, this.offset);
  }
}
