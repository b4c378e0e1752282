import { connect, Socket } from 'node:net';
import { Answer, AnswerStatus, answerStatusName, decodeAnswer } from '../protocol/answer.js';
import { encodeConfirmation } from '../protocol/confirmation.js';
import { FrameParser } from '../protocol/frame.js';
import { ProtocolError } from '../protocol/errors.js';
import { ReceiptFields, verifyReceipt } from '../protocol/receipt.js';
import { DcxError, messageOf, unreachable } from './errors.js';
import { ExitCode } from './exit-codes.js';

export const CONNECT_TIMEOUT_MS = 10_000;
export const ANSWER_TIMEOUT_MS = 30_000;

export interface ConfirmTarget {
  host: string;
  port: number;
}

export interface ConfirmTimeouts {
  connectMs?: number;
  answerMs?: number;
}

/**
 * Sends one confirmation frame [50] to the server's confirmation port and returns its answer.
 * Connect failure or timeout → exit 6; a broken answer → exit 1.
 */
/** How an HTTP server's answer starts (a proxy or web server on the confirmation port). */
const HTTP_STATUS_LINE = Buffer.from('HTTP/');

export function exchange(target: ConfirmTarget, frame: Buffer, timeouts: ConfirmTimeouts = {}): Promise<Answer> {
  const host = target.host.replace(/^\[(.*)\]$/, '$1');
  const where = `${target.host}:${target.port}`;
  const connectMs = timeouts.connectMs ?? CONNECT_TIMEOUT_MS;
  const answerMs = timeouts.answerMs ?? ANSWER_TIMEOUT_MS;

  return new Promise<Answer>((resolve, reject) => {
    const parser = new FrameParser();
    let settled = false;
    let connected = false;
    const socket: Socket = connect({ host, port: target.port });

    const finish = (error: Error | null, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer!);
    };

    let timer = setTimeout(
      () => finish(unreachable(`cannot reach the confirmation server ${where}: no connection after ${connectMs / 1000} s`)),
      connectMs,
    );

    socket.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(unreachable(`the confirmation server ${where} did not answer within ${answerMs / 1000} s`)),
        answerMs,
      );
      socket.write(frame);
    });

    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (received.length < HTTP_STATUS_LINE.length) received = Buffer.concat([received, chunk]);
      try {
        parser.parse(chunk, (answerFrame) => finish(null, decodeAnswer(answerFrame)));
      } catch (error) {
        finish(
          // "HTTP" read as a frame length is 1,213,486,160 bytes: say what the port really is.
          received.subarray(0, HTTP_STATUS_LINE.length).equals(HTTP_STATUS_LINE)
            ? unreachable(`${where} is not a DCX confirmation port (it answered HTTP): check the confirmation host and port`)
            : new DcxError(ExitCode.Failure, `the confirmation server ${where} sent a malformed answer: ${messageOf(error)}`, {
                cause: error,
              }),
        );
      }
    });

    socket.once('error', (error) => {
      finish(
        connected
          ? unreachable(`lost the connection to the confirmation server ${where}: ${messageOf(error)}`, error)
          : unreachable(`cannot reach the confirmation server ${where}: ${messageOf(error)}`, error),
      );
    });

    socket.once('close', () => {
      finish(unreachable(`the confirmation server ${where} closed the connection without answering`));
    });
  });
}

export interface ConfirmRequest {
  target: ConfirmTarget;
  deliveryId: string;
  confirmSecret: Buffer;
  clientFingerprint: string;
  /** SHA-256 (hex) of every saved file, in the plug-in data's order. */
  digests: string[];
  /** The pinned server's Ed25519 key (raw 32 bytes): the receipt must verify against it. */
  serverSignPublicKey: Buffer;
}

export interface ConfirmOutcome {
  status: 'accepted' | 'already_confirmed';
  message: string;
  receipt: Buffer;
  receiptFields: ReceiptFields;
}

export interface ConfirmOptions extends ConfirmTimeouts {
  /** How often to ask again when the server answers "try later" (default 3 tries in all). */
  attempts?: number;
  /** Delay before the n-th retry, in ms (default 1 s, 2 s, …). */
  retryDelayMs?: (retry: number) => number;
}

/**
 * Confirms a delivery: sends the confirmation, retries on "try later", and accepts only an
 * accepted / already-confirmed answer whose receipt is signed by the pinned server key and names
 * this delivery. Any other answer → exit 5.
 */
export async function confirmDelivery(request: ConfirmRequest, options: ConfirmOptions = {}): Promise<ConfirmOutcome> {
  const frame = encodeConfirmation(
    { deliveryId: request.deliveryId, clientFingerprint: request.clientFingerprint, digests: request.digests },
    request.confirmSecret,
  );
  const attempts = Math.max(1, options.attempts ?? 3);
  const delay = options.retryDelayMs ?? ((retry: number) => 1000 * retry);
  let answer = await exchange(request.target, frame, options);
  for (let retry = 1; answer.status === AnswerStatus.TryLater && retry < attempts; retry++) {
    await new Promise((r) => setTimeout(r, delay(retry)));
    answer = await exchange(request.target, frame, options);
  }

  const name = answerStatusName(answer.status);
  if (answer.status !== AnswerStatus.Accepted && answer.status !== AnswerStatus.AlreadyConfirmed) {
    throw new DcxError(
      ExitCode.ConfirmationRefused,
      `the server refused the confirmation: ${name}${answer.message ? ` (${answer.message})` : ''}`,
    );
  }
  if (!answer.receipt) throw new DcxError(ExitCode.Failure, `the server answered ${name} without a receipt`);
  let receiptFields: ReceiptFields;
  try {
    receiptFields = verifyReceipt(answer.receipt, request.serverSignPublicKey);
  } catch (error) {
    const why = error instanceof ProtocolError ? error.message : messageOf(error);
    throw new DcxError(ExitCode.Failure, `the server's receipt is not valid: ${why}`, { cause: error });
  }
  if (receiptFields.deliveryId !== request.deliveryId) {
    throw new DcxError(ExitCode.Failure, `the server's receipt is for delivery ${receiptFields.deliveryId}, not ${request.deliveryId}`);
  }
  const attested = receiptFields.files.map((f) => f.sha256).sort();
  const ours = [...request.digests].sort();
  if (attested.length !== ours.length || attested.some((d, i) => d !== ours[i])) {
    throw new DcxError(ExitCode.Failure, `the server's receipt for ${request.deliveryId} attests other files than the ones saved`);
  }
  return {
    status: answer.status === AnswerStatus.Accepted ? 'accepted' : 'already_confirmed',
    message: answer.message,
    receipt: answer.receipt,
    receiptFields,
  };
}
