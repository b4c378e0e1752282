import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Answer, AnswerStatus, answerStatusName, encodeAnswer, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { Frame, FrameParser } from '../../protocol/frame.js';
import type { ConfirmationService } from './confirmation.service.js';

/** One confirmation frame answered: what the log line and the processing-time metric say (no secrets). */
export interface ProcessedConfirmation {
  deliveryId: string;
  /** The answer's status name: accepted, already_confirmed, seal_invalid, ... */
  status: string;
  remoteAddress: string;
  seconds: number;
}

/** Frames of one connection read ahead of their answers at most; then reading pauses until answers go out. */
const MAX_PENDING_FRAMES = 16;

export interface ConnectionLimits {
  maxFrameBytes: number;
  idleTimeoutMs: number;
}

/**
 * [89] One TCP connection of the confirmation receiver: frames in, one answer each, in order. Bad
 * bytes end it with a "malformed" answer.
 */
export class ConfirmationConnection {
  private readonly parser: FrameParser;
  /** Frames being answered: a connection busy with them is not idle. */
  private answering = 0;
  /** Frames are answered one after the other, in the order they came. */
  private queue = Promise.resolve();
  /** No more frames are read: the connection is ending. */
  private closing = false;
  /** A frame must arrive whole within the idle timeout of its first byte (no slow-loris). */
  private frameDeadline: NodeJS.Timeout | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly remoteAddress: string,
    private readonly limits: ConnectionLimits,
    private readonly confirmations: ConfirmationService,
    private readonly report: (confirmation: ProcessedConfirmation) => void,
  ) {
    this.parser = new FrameParser(limits.maxFrameBytes);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(limits.idleTimeoutMs, () => {
      if (this.answering === 0) socket.destroy();
    });
    socket.on('close', () => this.clearFrameDeadline());
    socket.on('drain', () => this.flow());
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    // A peer that half-closes after its last frame still gets every answer; then the connection ends.
    socket.on('end', () => this.peerEnded());
  }

  private peerEnded(): void {
    this.closing = true;
    this.clearFrameDeadline();
    this.queue = this.queue.then(() => {
      if (!this.socket.destroyed) this.socket.end();
    });
  }

  private read(chunk: Buffer): void {
    // After a refusal, what the peer still sends is read and dropped, so that its FIN is seen and the
    // connection closes instead of holding a connection slot until the idle timeout.
    if (this.closing) return;
    try {
      this.parser.parse(chunk, (frame) => this.enqueue(frame));
    } catch (error) {
      this.refuseBytes((error as Error).message);
      return;
    }
    if (this.parser.pending === 0) this.clearFrameDeadline();
    else this.frameDeadline ??= setTimeout(() => this.frameTimedOut(), this.limits.idleTimeoutMs);
    this.flow();
  }

  private enqueue(frame: Frame): void {
    this.answering++;
    this.queue = this.queue
      .then(() => this.answer(frame))
      .finally(() => {
        this.answering--;
        this.flow();
      });
  }

  private async answer(frame: Frame): Promise<void> {
    if (this.socket.destroyed) return;
    const started = performance.now();
    const answer = await this.confirmations.handle(frame, this.remoteAddress);
    if (!this.socket.destroyed) this.socket.write(encodeAnswer(answer));
    this.reportAnswer(answer, started);
  }

  /** Backpressure: no reading while MAX_PENDING_FRAMES answers are due or the peer does not read them. */
  private flow(): void {
    if (this.closing || this.socket.destroyed) return;
    if (this.answering >= MAX_PENDING_FRAMES || this.socket.writableNeedDrain) this.socket.pause();
    else this.socket.resume();
  }

  /** Bytes that are no frame: after the answers due, a recorded "malformed" refusal, and the end. */
  private refuseBytes(message: string): void {
    this.closing = true;
    this.clearFrameDeadline();
    this.socket.pause();
    const started = performance.now();
    this.queue = this.queue
      .then(() => this.confirmations.refuseMalformed(this.remoteAddress, message))
      .then((answer) => {
        this.socket.end(encodeAnswer(answer));
        this.socket.resume();
        this.reportAnswer(answer, started);
      });
  }

  private frameTimedOut(): void {
    this.closing = true;
    this.socket.pause();
    const message = `frame not completed within ${this.limits.idleTimeoutMs} ms`;
    this.socket.end(encodeAnswer({ status: AnswerStatus.Malformed, deliveryId: NO_DELIVERY_ID, message, receipt: null }), () =>
      this.socket.destroy(),
    );
  }

  private clearFrameDeadline(): void {
    if (this.frameDeadline) clearTimeout(this.frameDeadline);
    this.frameDeadline = null;
  }

  private reportAnswer(answer: Answer, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    this.report({ deliveryId: answer.deliveryId, status: answerStatusName(answer.status), remoteAddress: this.remoteAddress, seconds });
  }
}
