// Shared builders of the protocol specs (as pg-protocol's test-buffers): frames and fixed bytes made
// without the serializers under test, and the one way a spec catches a refusal.
import { createHash } from 'node:crypto';
import { ProtocolError } from '../errors.js';
import { Frame, FrameParser } from '../frame.js';

/** The ProtocolError `run` throws; fails the spec when it throws anything else or nothing. */
export function refusal(run: () => unknown): ProtocolError {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw new Error(`expected a ProtocolError, got ${String(error)}`, { cause: error });
    return error;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}

/** A Frame as FrameParser would hand it out, built without the parser (to feed it bytes the parser would refuse). */
export function frameOf(raw: Buffer): Frame {
  return { version: raw[4], type: raw[5], body: raw.subarray(6), raw };
}

/** The one frame `bytes` hold, through the parser; fails the spec when they hold another count. */
export function parseOne(bytes: Buffer): Frame {
  const frames: Frame[] = [];
  new FrameParser().parse(bytes, (frame) => frames.push(frame));
  if (frames.length !== 1) throw new Error(`expected 1 frame, the parser gave ${frames.length}`);
  return frames[0];
}

/** SHA-256 of the parts joined, written out independently of the code under test. */
export function sha256(...parts: Buffer[]): Buffer {
  return createHash('sha256').update(Buffer.concat(parts)).digest();
}
