import { MAX_STRING_BYTES } from './constants.js';
import { ProtocolError } from './errors.js';

/** Bounds-checked big-endian reader: every overrun is a TRUNCATED ProtocolError, never a RangeError. */
export class BufferReader {
  private offset = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
  ) {}

  private take(size: number, field: string): number {
    if (this.offset + size > this.buffer.length) {
      throw new ProtocolError(
        'TRUNCATED',
        `${this.what} truncated: ${field} needs ${size} bytes at offset ${this.offset}, ${this.buffer.length - this.offset} left`,
      );
    }
    const at = this.offset;
    this.offset += size;
    return at;
  }

  uint8(field: string): number {
    return this.buffer.readUInt8(this.take(1, field));
  }

  uint16(field: string): number {
    return this.buffer.readUInt16BE(this.take(2, field));
  }

  uint32(field: string): number {
    return this.buffer.readUInt32BE(this.take(4, field));
  }

  uint64(field: string): number {
    const value = this.buffer.readBigUInt64BE(this.take(8, field));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('MALFORMED', `${this.what}: ${field} out of range`);
    return Number(value);
  }

  bytes(size: number, field: string): Buffer {
    const at = this.take(size, field);
    return this.buffer.subarray(at, at + size);
  }

  shortString(field: string): string {
    return this.utf8(this.uint8(`${field} length`), field);
  }

  string(field: string): string {
    const length = this.uint16(`${field} length`);
    if (length > MAX_STRING_BYTES) throw new ProtocolError('TOO_LARGE', `${this.what}: ${field} longer than ${MAX_STRING_BYTES} bytes`);
    return this.utf8(length, field);
  }

  private utf8(length: number, field: string): string {
    const raw = this.bytes(length, field);
    const text = raw.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(raw)) throw new ProtocolError('MALFORMED', `${this.what}: ${field} is not valid UTF-8`);
    return text;
  }

  rest(): Buffer {
    return this.bytes(this.buffer.length - this.offset, 'rest');
  }

  get remaining(): number {
    return this.buffer.length - this.offset;
  }

  /** A record must be consumed exactly: trailing bytes are as suspicious as missing ones. */
  end(): void {
    if (this.remaining !== 0) throw new ProtocolError('MALFORMED', `${this.what}: ${this.remaining} unexpected trailing bytes`);
  }
}
