import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { createServer, Server, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Observable, Subject } from 'rxjs';
import { Answer, AnswerStatus, answerStatusName, encodeAnswer, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { FrameType } from '../../protocol/constants.js';
import { Frame, FrameParser } from '../../protocol/frame.js';
import { AppConfig } from '../config/app-config.js';
import { normalizeAddress } from '../common/ip.js';
import { ConfirmationService } from './confirmation.service.js';

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

/**
 * [89] The delivery confirmation receiver: a TCP listener on CONFIRM_PORT, started and stopped with the
 * application. Each connection may send confirmation frames; each gets an answer frame, in order.
 * Bad bytes end that connection with a "malformed" answer, never the listener.
 */
@Injectable()
export class ConfirmationListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConfirmationListener.name);
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  private readonly processed = new Subject<ProcessedConfirmation>();
  /** Every answered confirmation frame, for metrics. */
  readonly processed$: Observable<ProcessedConfirmation> = this.processed.asObservable();

  constructor(
    private readonly config: AppConfig,
    private readonly confirmations: ConfirmationService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    server.on('error', (error) => this.logger.error(`confirmation listener: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.confirmPort, this.config.confirmBindHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.logger.log(`confirmations on tcp://${this.config.confirmBindHost}:${this.port}`);
  }

  /** The bound port (differs from CONFIRM_PORT when that is 0). */
  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.config.confirmPort;
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    this.processed.complete();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private accept(socket: Socket): void {
    const remoteAddress = normalizeAddress(socket.remoteAddress ?? 'unknown');
    if (this.sockets.size >= this.config.confirmMaxConnections) {
      socket.end(encodeAnswer({ status: AnswerStatus.TryLater, deliveryId: NO_DELIVERY_ID, message: 'too many connections; try again later', receipt: null }));
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    // Idle means no frame being answered either: a busy server must not hang up on a waiting client.
    let answering = 0;
    socket.setTimeout(this.config.confirmIdleTimeoutMs, () => {
      if (answering === 0) socket.destroy();
    });
    // A frame must arrive whole within the idle timeout of its first byte: a peer trickling bytes
    // (slow-loris) would otherwise hold a connection slot forever, since each byte resets the idle timer.
    let frameDeadline: NodeJS.Timeout | null = null;
    const clearFrameDeadline = () => {
      if (frameDeadline) clearTimeout(frameDeadline);
      frameDeadline = null;
    };
    socket.on('close', clearFrameDeadline);
    // Backpressure: stop reading while MAX_PENDING_FRAMES answers are due or the peer is not reading
    // them, so a client pipelining frames cannot make the server buffer without bound.
    let closing = false;
    const flow = () => {
      if (closing || socket.destroyed) return;
      if (answering >= MAX_PENDING_FRAMES || socket.writableNeedDrain) socket.pause();
      else socket.resume();
    };
    socket.on('drain', flow);

    const parser = new FrameParser(this.config.confirmMaxFrameBytes);
    // Frames of one connection are answered one after the other, in the order they came.
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.parse(chunk, (frame) => {
          answering++;
          queue = queue
            .then(() => this.answer(socket, frame, remoteAddress))
            .finally(() => {
              answering--;
              flow();
            });
        });
        if (parser.pending === 0) clearFrameDeadline();
        else frameDeadline ??= setTimeout(() => {
          closing = true;
          socket.pause();
          const answer = encodeAnswer({ status: AnswerStatus.Malformed, deliveryId: NO_DELIVERY_ID, message: `frame not completed within ${this.config.confirmIdleTimeoutMs} ms`, receipt: null });
          socket.end(answer, () => socket.destroy());
        }, this.config.confirmIdleTimeoutMs);
        flow();
      } catch (error) {
        closing = true;
        clearFrameDeadline();
        socket.pause();
        const message = (error as Error).message;
        const started = performance.now();
        queue = queue
          .then(() => this.confirmations.refuseUnknown(NO_DELIVERY_ID, remoteAddress, AnswerStatus.Malformed, message))
          .then((answer) => {
            socket.end(encodeAnswer(answer));
            this.report({ deliveryId: answer.deliveryId, status: answerStatusName(answer.status), remoteAddress, seconds: (performance.now() - started) / 1000 });
          });
      }
    });
  }

  private async answer(socket: Socket, frame: Frame, remoteAddress: string): Promise<void> {
    if (socket.destroyed) return;
    const started = performance.now();
    const answer: Answer =
      frame.type === FrameType.Confirmation
        ? await this.confirmations.handle(frame, remoteAddress)
        : await this.confirmations.refuseUnknown(NO_DELIVERY_ID, remoteAddress, AnswerStatus.Malformed, `frame type ${frame.type} is not a confirmation`);
    if (!socket.destroyed) socket.write(encodeAnswer(answer));
    this.report({ deliveryId: answer.deliveryId, status: answerStatusName(answer.status), remoteAddress, seconds: (performance.now() - started) / 1000 });
  }

  private report(confirmation: ProcessedConfirmation): void {
    const { deliveryId, status, remoteAddress, seconds } = confirmation;
    this.logger.log({ msg: 'confirmation answered', deliveryId, status, remoteAddress, durationMs: Math.round(seconds * 1000) });
    this.processed.next(confirmation);
  }
}
