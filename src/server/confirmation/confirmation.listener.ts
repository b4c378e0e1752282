import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { createServer, Server, Socket } from 'node:net';
import { Observable, Subject } from 'rxjs';
import { AnswerStatus, encodeAnswer, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { AppConfig } from '../config/app-config.js';
import { normalizeAddress } from '../common/ip.js';
import { ConfirmationConnection, ProcessedConfirmation } from './confirmation-connection.js';
import { ConfirmationService } from './confirmation.service.js';

export type { ProcessedConfirmation } from './confirmation-connection.js';

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
    // Half-open: a peer's FIN ends the connection only after its answers went out (ConfirmationConnection).
    const server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
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
    if (this.sockets.size >= this.config.confirmMaxConnections) {
      // Not counted, so not left open: a peer that never closes its side is cut off after the idle timeout.
      socket.on('error', () => socket.destroy());
      socket.setTimeout(this.config.confirmIdleTimeoutMs, () => socket.destroy());
      socket.end(
        encodeAnswer({
          status: AnswerStatus.TryLater,
          deliveryId: NO_DELIVERY_ID,
          message: 'too many connections; try again later',
          receipt: null,
        }),
      );
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    const limits = { maxFrameBytes: this.config.confirmMaxFrameBytes, idleTimeoutMs: this.config.confirmIdleTimeoutMs };
    new ConfirmationConnection(socket, normalizeAddress(socket.remoteAddress ?? 'unknown'), limits, this.confirmations, (processed) =>
      this.report(processed),
    );
  }

  private report(confirmation: ProcessedConfirmation): void {
    const { deliveryId, status, remoteAddress, seconds } = confirmation;
    this.logger.log({ msg: 'confirmation answered', deliveryId, status, remoteAddress, durationMs: Math.round(seconds * 1000) });
    this.processed.next(confirmation);
  }
}
