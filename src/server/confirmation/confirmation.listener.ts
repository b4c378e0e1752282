import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { createServer, Server, Socket } from 'node:net';
import { createServer as createTlsServer, Server as TlsServer, TLSSocket } from 'node:tls';
import { Observable, Subject } from 'rxjs';
import { AnswerStatus, encodeAnswer, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { AppConfig } from '../config/app-config.js';
import { normalizeAddress } from '../common/ip.js';
import { ConfirmationConnection, ProcessedConfirmation } from './confirmation-connection.js';
import { ConfirmationService } from './confirmation.service.js';

export type { ProcessedConfirmation } from './confirmation-connection.js';

/**
 * The first byte of a TLS connection (a handshake record, RFC 8446 §5.1). As the first byte of a frame's
 * length it would announce at least 0x16000000 bytes, above any CONFIRM_MAX_FRAME_BYTES: the two never mix up.
 */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * [89] The delivery confirmation receiver: a TCP listener on CONFIRM_PORT, started and stopped with the
 * application. Each connection may send confirmation frames; each gets an answer frame, in order.
 * Bad bytes end that connection with a "malformed" answer, never the listener. With CONFIRM_TLS_CERT/KEY
 * a connection that opens with a TLS handshake is served over TLS, others as plain frames (PROTOCOL.md §4.2).
 */
@Injectable()
export class ConfirmationListener implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ConfirmationListener.name);
  private readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  /** Does the handshakes of TLS connections (never listens itself); null without CONFIRM_TLS_CERT. */
  private readonly tls: TlsServer | null;
  private readonly processed = new Subject<ProcessedConfirmation>();
  /** Every answered confirmation frame, for metrics. */
  readonly processed$: Observable<ProcessedConfirmation> = this.processed.asObservable();

  constructor(
    private readonly config: AppConfig,
    private readonly confirmations: ConfirmationService,
  ) {
    const tls = config.confirmTls;
    this.tls = tls
      ? createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: config.confirmIdleTimeoutMs }, (socket) =>
          this.serve(socket, socket.remoteAddress),
        )
      : null;
  }

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
    this.logger.log(`confirmations on tcp://${this.config.confirmBindHost}:${this.port}${this.tls ? ' (TLS and plain)' : ''}`);
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
    const tls = this.tls;
    if (!tls) return this.serve(socket, socket.remoteAddress);
    // The first byte says whether the client speaks TLS; it is put back for whoever reads the connection.
    socket.on('error', () => socket.destroy());
    const idle = () => socket.destroy();
    socket.setTimeout(this.config.confirmIdleTimeoutMs, idle);
    socket.once('data', (first: Buffer) => {
      socket.off('timeout', idle);
      socket.pause();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE_RECORD) tls.emit('connection', socket);
      else {
        this.serve(socket, socket.remoteAddress);
        socket.resume(); // paused above; its new 'data' listener does not resume it by itself
      }
    });
  }

  private serve(socket: Socket | TLSSocket, remoteAddress: string | undefined): void {
    const limits = { maxFrameBytes: this.config.confirmMaxFrameBytes, idleTimeoutMs: this.config.confirmIdleTimeoutMs };
    new ConfirmationConnection(socket, normalizeAddress(remoteAddress ?? 'unknown'), limits, this.confirmations, (processed) =>
      this.report(processed),
    );
  }

  private report(confirmation: ProcessedConfirmation): void {
    const { deliveryId, status, remoteAddress, seconds } = confirmation;
    this.logger.log({ msg: 'confirmation answered', deliveryId, status, remoteAddress, durationMs: Math.round(seconds * 1000) });
    this.processed.next(confirmation);
  }
}
