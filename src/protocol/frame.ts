import { DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_SIZE, FrameType, LENGTH_SIZE, PROTOCOL_VERSION, VERSION_SIZE } from './constants.js';
import { ProtocolError } from './errors.js';

/** One TCP frame: [length u32 (counting itself)][version u8][type u8][body]. */
export interface Frame {
  version: number;
  type: FrameType;
  body: Buffer;
  /** The whole frame, for AEAD additional data. */
  raw: Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * Cuts a TCP byte stream into frames, keeping leftover bytes across chunks (as pg-protocol's Parser).
 * A length above maxFrameSize is refused as soon as its 4 bytes arrive, before any body is buffered.
 */
export class FrameParser {
  private buffer: Buffer = EMPTY;

  constructor(private readonly maxFrameSize = DEFAULT_MAX_FRAME_SIZE) {}

  parse(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    // Judge the length as soon as its 4 bytes are here, and the version as soon as its byte is:
    // a peer announcing a huge frame is refused before it sends (and we buffer) any of the body.
    while (this.buffer.length - offset >= LENGTH_SIZE) {
      const length = this.buffer.readUInt32BE(offset);
      if (length < FRAME_HEADER_SIZE) {
        this.buffer = EMPTY;
        throw new ProtocolError('MALFORMED', `frame length ${length} is shorter than its ${FRAME_HEADER_SIZE}-byte header`);
      }
      if (length > this.maxFrameSize) {
        this.buffer = EMPTY;
        throw new ProtocolError('TOO_LARGE', `frame of ${length} bytes exceeds the limit of ${this.maxFrameSize}`);
      }
      if (this.buffer.length - offset < LENGTH_SIZE + VERSION_SIZE) break;
      const version = this.buffer.readUInt8(offset + LENGTH_SIZE);
      if (version !== PROTOCOL_VERSION) {
        this.buffer = EMPTY;
        throw new ProtocolError('UNSUPPORTED_VERSION', `frame version ${version} is not supported (expected ${PROTOCOL_VERSION})`);
      }
      if (this.buffer.length - offset < length) break;
      // Copy: the frame outlives this chunk's buffer.
      const raw = Buffer.from(this.buffer.subarray(offset, offset + length));
      offset += length;
      onFrame({ version, type: raw.readUInt8(LENGTH_SIZE + VERSION_SIZE), body: raw.subarray(FRAME_HEADER_SIZE), raw });
    }
    this.buffer = offset === this.buffer.length ? EMPTY : this.buffer.subarray(offset);
  }

  /** Bytes of an unfinished frame: non-zero when a peer hangs up mid-frame. */
  get pending(): number {
    return this.buffer.length;
  }
}

/** The header of a frame whose body is `bodyLength` bytes (a sealed frame's AAD starts with it). */
export function frameHeader(type: FrameType, bodyLength: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  header.writeUInt32BE(FRAME_HEADER_SIZE + bodyLength, 0);
  header.writeUInt8(PROTOCOL_VERSION, LENGTH_SIZE);
  header.writeUInt8(type, LENGTH_SIZE + VERSION_SIZE);
  return header;
}

/** Prefixes a body with the frame header. */
export function serializeFrame(type: FrameType, body: Buffer): Buffer {
  return Buffer.concat([frameHeader(type, body.length), body]);
}

/**
 * Bytes that must be exactly one frame (an HTTP body: POST /api/confirmations, an inbox ack): the frame, or why
 * they are none, as the "malformed" answer's message. `what` names the bytes in that message.
 */
export function singleFrame(bytes: Buffer, maxFrameSize: number, what: string): Frame | string {
  const parser = new FrameParser(maxFrameSize);
  const frames: Frame[] = [];
  try {
    parser.parse(bytes, (frame) => frames.push(frame));
  } catch (error) {
    return (error as Error).message;
  }
  if (frames.length === 1 && parser.pending === 0) return frames[0];
  return frames.length === 0 ? `${what} is not a whole confirmation frame` : `${what} holds more than one frame`;
}
