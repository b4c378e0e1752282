// A real TCP confirmation endpoint for the client specs, built from the protocol's server-side functions.
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { Answer, AnswerStatus, encodeAnswer } from '../../protocol/answer.js';
import { Confirmation, decodeConfirmationFrame, deriveConfirmKey, openConfirmation } from '../../protocol/confirmation.js';
import { FrameParser } from '../../protocol/frame.js';
import { ServerKeySet } from '../../protocol/keys.js';
import { PluginData } from '../../protocol/plugin-data.js';
import { signReceipt } from '../../protocol/receipt.js';

export interface RecordedConfirmation {
  confirmation: Confirmation;
  remoteAddress: string;
}

/**
 * A confirmation port that knows the deliveries it was told about and answers like the server:
 * accepted (with a signed receipt), then already confirmed; or whatever `override` returns.
 */
export class ConfirmEndpoint {
  readonly received: RecordedConfirmation[] = [];
  private readonly deliveries = new Map<string, { data: PluginData; receipt: Buffer | null }>();
  private readonly sockets = new Set<Socket>();
  override: ((c: Confirmation) => Answer | null) | null = null;
  /** Accept connections but never answer. */
  silent = false;

  private constructor(
    private readonly server: Server,
    private readonly keys: ServerKeySet,
  ) {}

  static async start(keys: ServerKeySet): Promise<ConfirmEndpoint> {
    const server = createServer();
    const endpoint = new ConfirmEndpoint(server, keys);
    server.on('connection', (socket) => endpoint.serve(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return endpoint;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  expect(data: PluginData): void {
    this.deliveries.set(data.deliveryId, { data, receipt: null });
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = new FrameParser();
    socket.on('data', (chunk: Buffer) => {
      parser.parse(chunk, (frame) => {
        if (this.silent) return;
        socket.end(encodeAnswer(this.answer(frame, socket.remoteAddress ?? '')));
      });
    });
  }

  private answer(frame: Parameters<typeof decodeConfirmationFrame>[0], remoteAddress: string): Answer {
    const sealed = decodeConfirmationFrame(frame);
    const known = this.deliveries.get(sealed.deliveryId);
    if (!known) return { status: AnswerStatus.Unknown, deliveryId: sealed.deliveryId, message: 'no such delivery', receipt: null };
    const confirmation = openConfirmation(sealed, deriveConfirmKey(known.data.confirmSecret, sealed.deliveryId));
    this.received.push({ confirmation, remoteAddress });
    const forced = this.override?.(confirmation);
    if (forced) return forced;
    if (known.receipt)
      return { status: AnswerStatus.AlreadyConfirmed, deliveryId: sealed.deliveryId, message: 'already confirmed', receipt: known.receipt };
    if (known.data.expiresAt.getTime() < Date.now()) {
      return {
        status: AnswerStatus.Expired,
        deliveryId: sealed.deliveryId,
        message: `the delivery expired at ${known.data.expiresAt.toISOString()}`,
        receipt: null,
      };
    }
    const expected = known.data.files.map((f) => f.sha256);
    if (confirmation.digests.join() !== expected.join()) {
      return { status: AnswerStatus.DigestMismatch, deliveryId: sealed.deliveryId, message: 'digests differ', receipt: null };
    }
    known.receipt = signReceipt(
      {
        keyId: this.keys.keyId,
        deliveryId: sealed.deliveryId,
        clientFingerprint: known.data.client.fingerprint,
        requesterAddress: known.data.client.address,
        issuedAt: known.data.issuedAt,
        sentAt: new Date(),
        confirmedAt: new Date(),
        files: known.data.files,
      },
      this.keys,
    );
    return { status: AnswerStatus.Accepted, deliveryId: sealed.deliveryId, message: 'delivery confirmed', receipt: known.receipt };
  }
}
