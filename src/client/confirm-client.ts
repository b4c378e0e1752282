import { connect, isIP, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Answer, AnswerStatus, answerStatusName, decodeAnswer } from '../protocol/answer.js';
import { encodeConfirmation } from '../protocol/confirmation.js';
import { ANSWER_MEDIA_TYPE, CONFIRMATION_MEDIA_TYPE, CONFIRMATIONS_PATH } from '../protocol/constants.js';
import { Frame, FrameParser } from '../protocol/frame.js';
import { ProtocolError } from '../protocol/errors.js';
import { ReceiptFields, verifyReceipt } from '../protocol/receipt.js';
import { DcxError, errnoCode, messageOf, unreachable } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { httpFailure, httpRequest } from './http.js';

/** How long `auto` waits for the TCP port before it sends the frame over HTTPS (`--confirm-timeout`). */
export const CONNECT_TIMEOUT_MS = 3_000;
export const ANSWER_TIMEOUT_MS = 30_000;

/** How a confirmation travels: the TCP port, then HTTPS when the port cannot be reached (auto); or one of them. */
export const CONFIRM_VIAS = ['auto', 'tcp', 'https'] as const;
export type ConfirmVia = (typeof CONFIRM_VIAS)[number];

export interface ConfirmTarget {
  host: string;
  port: number;
  /** Speak TLS on the port (the server's URL is https: PROTOCOL.md §4.2). */
  tls?: boolean;
}

/** The HTTPS confirmation URL of a server: its plug-in data's server URL + /api/confirmations. */
export function confirmationsUrl(serverUrl: string): string {
  return `${serverUrl.replace(/\/+$/, '')}${CONFIRMATIONS_PATH}`;
}

export interface ConfirmTimeouts {
  connectMs?: number;
  answerMs?: number;
}

/** How an HTTP server's answer starts (a proxy or web server on the confirmation port). */
const HTTP_STATUS_LINE = Buffer.from('HTTP/');

/** OpenSSL's words when the peer answered a TLS hello with bytes that are no TLS. */
const NOT_TLS = /wrong version number|packet length too long|unknown protocol/i;

/**
 * Sends one confirmation frame [50] to the server's confirmation port (over TLS when `target.tls`) and
 * returns its answer. Connect failure, timeout or an untrusted certificate → exit 6; a broken answer → exit 1.
 */
export function exchange(target: ConfirmTarget, frame: Buffer, timeouts: ConfirmTimeouts = {}): Promise<Answer> {
  const host = target.host.replace(/^\[(.*)\]$/, '$1');
  const where = `${target.host}:${target.port}`;
  const connectMs = timeouts.connectMs ?? CONNECT_TIMEOUT_MS;
  const answerMs = timeouts.answerMs ?? ANSWER_TIMEOUT_MS;

  return new Promise<Answer>((resolve, reject) => {
    const parser = new FrameParser();
    let settled = false;
    let connected = false;
    const socket: Socket = target.tls
      ? tlsConnect({ host, port: target.port, servername: isIP(host) ? undefined : host })
      : connect({ host, port: target.port });

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

    socket.once(target.tls ? 'secureConnect' : 'connect', () => {
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

    socket.once('error', (error) => finish(connectionFailure(where, error, connected, target.tls === true)));

    socket.once('close', () => {
      finish(unreachable(`the confirmation server ${where} closed the connection without answering`));
    });
  });
}

/** A socket error on the confirmation port: after connecting, before, or in the TLS handshake. */
function connectionFailure(where: string, error: Error, connected: boolean, tls: boolean): DcxError {
  if (connected) return unreachable(`lost the connection to the confirmation server ${where}: ${messageOf(error)}`, error);
  if (tls) return tlsFailure(where, error);
  return unreachable(`cannot reach the confirmation server ${where}: ${messageOf(error)}`, error);
}

/** Why a TLS connection to the confirmation port failed, in words that say what to do. */
function tlsFailure(where: string, error: Error): DcxError {
  const code = errnoCode(error);
  if (NOT_TLS.test(error.message))
    return unreachable(`the confirmation server ${where} does not speak TLS (its server URL is https, so dcx expects it to)`, error);
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(code)) {
    return unreachable(
      `the confirmation server ${where} has a TLS certificate this client does not trust (${code}: ${messageOf(error)}); ` +
        "a private CA's certificate goes in NODE_EXTRA_CA_CERTS",
      error,
    );
  }
  return unreachable(`cannot reach the confirmation server ${where} over TLS: ${messageOf(error)}`, error);
}

/** An answer frame, and the server's Retry-After when it said "try later" over HTTPS. */
export interface HttpsAnswer {
  answer: Answer;
  retryAfterMs?: number;
}

/**
 * POSTs one confirmation frame to `url` (POST /api/confirmations, PROTOCOL.md §4.1), through the proxy the
 * environment names. No answer frame back (a 404 from an older server, a proxy's error page) → an error.
 */
export async function exchangeHttps(url: string, frame: Buffer, timeouts: ConfirmTimeouts = {}): Promise<HttpsAnswer> {
  const answerMs = timeouts.answerMs ?? ANSWER_TIMEOUT_MS;
  const response = await httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': CONFIRMATION_MEDIA_TYPE, accept: ANSWER_MEDIA_TYPE },
    body: frame,
    signal: AbortSignal.timeout(answerMs),
  }).catch((error: unknown) => {
    if (error instanceof DcxError && /aborted|timeout/i.test(error.message))
      throw unreachable(`the confirmation server ${new URL(url).origin} did not answer within ${answerMs / 1000} s`, error);
    throw error;
  });
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith(ANSWER_MEDIA_TYPE)) {
    const failure = await httpFailure(response, `confirming over HTTPS at ${url}`);
    // The server is there but takes no confirmations here (an older one, or a proxy's page): not sent.
    if (failure.exitCode === ExitCode.Failure && [404, 405].includes(response.status))
      throw unreachable(`${failure.message}; the server takes no confirmations over HTTPS (try --via tcp)`);
    throw failure;
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  let answer: Answer | undefined;
  try {
    const frames: Frame[] = [];
    new FrameParser().parse(bytes, (f) => frames.push(f));
    if (frames.length !== 1) throw new Error(`${frames.length} answer frames in the body`);
    answer = decodeAnswer(frames[0]);
  } catch (error) {
    throw new DcxError(ExitCode.Failure, `the confirmation server ${url} sent a malformed answer: ${messageOf(error)}`, { cause: error });
  }
  const retryAfter = Number(response.headers.get('retry-after'));
  return { answer, ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterMs: retryAfter * 1000 } : {}) };
}

export interface ConfirmRequest {
  target: ConfirmTarget;
  /** POST /api/confirmations of the server (its plug-in data's server URL): the way through when the port is blocked. */
  httpsUrl: string;
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
  /** auto (default): the TCP port, then HTTPS when it cannot be reached within connectMs; tcp or https: that one only. */
  via?: ConfirmVia;
  /** How often to ask again when the server answers "try later" (default 3 tries in all). */
  attempts?: number;
  /** Delay before the n-th retry, in ms (default 1 s, 2 s, …); the server's Retry-After is the floor. */
  retryDelayMs?: (retry: number) => number;
}

/** Where a frame can go: the confirmation port and the HTTPS URL. */
export type FrameDestination = Pick<ConfirmRequest, 'target' | 'httpsUrl'>;

/** The confirmation frame [50] of a request (sealed with its per-delivery secret; a fresh nonce each call). */
export function confirmationFrame(request: ConfirmRequest): Buffer {
  return encodeConfirmation(
    { deliveryId: request.deliveryId, clientFingerprint: request.clientFingerprint, digests: request.digests },
    request.confirmSecret,
  );
}

/**
 * Sends one frame the way `options.via` says and returns the answer: auto tries the port first, and on a
 * failure to get any answer there (exit 6: blocked, timed out, no TLS, not a DCX port) the same frame over
 * HTTPS. A confirmation is idempotent, so a frame the port did take and HTTPS repeats is "already confirmed".
 */
export async function sendFrame(frame: Buffer, to: FrameDestination, options: ConfirmOptions = {}): Promise<HttpsAnswer> {
  const via = options.via ?? 'auto';
  const timeouts = { connectMs: options.connectMs ?? CONNECT_TIMEOUT_MS, answerMs: options.answerMs };
  if (via === 'https') return exchangeHttps(to.httpsUrl, frame, timeouts);
  try {
    return { answer: await exchange(to.target, frame, timeouts) };
  } catch (error) {
    if (via === 'tcp' || !(error instanceof DcxError) || error.exitCode !== ExitCode.ServerUnreachable) throw error;
    try {
      return await exchangeHttps(to.httpsUrl, frame, timeouts);
    } catch (https) {
      if (!(https instanceof DcxError)) throw https;
      throw new DcxError(https.exitCode, `${error.message}; over HTTPS: ${https.message}`, { cause: https, status: https.status });
    }
  }
}

/** Sends a frame, asking again on "try later" (the server's Retry-After as the least delay). */
export async function sendWithRetries(frame: Buffer, to: FrameDestination, options: ConfirmOptions = {}): Promise<HttpsAnswer> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const delay = options.retryDelayMs ?? ((retry: number) => 1000 * retry);
  let sent = await sendFrame(frame, to, options);
  for (let retry = 1; sent.answer.status === AnswerStatus.TryLater && retry < attempts; retry++) {
    await new Promise((r) => setTimeout(r, Math.max(delay(retry), sent.retryAfterMs ?? 0)));
    sent = await sendFrame(frame, to, options);
  }
  return sent;
}

/**
 * Confirms a delivery: sends the confirmation (see sendFrame), retries on "try later", and accepts only an
 * accepted / already-confirmed answer whose receipt is signed by the pinned server key and names this
 * delivery. Any other answer → exit 5.
 */
export async function confirmDelivery(request: ConfirmRequest, options: ConfirmOptions = {}): Promise<ConfirmOutcome> {
  return checkAnswer((await sendWithRetries(confirmationFrame(request), request, options)).answer, request);
}

/** What checkAnswer needs of a request: which delivery, which saved files, which server key. */
export type AnswerCheck = Pick<ConfirmRequest, 'deliveryId' | 'digests' | 'serverSignPublicKey'>;

/**
 * An answer as an outcome: accepted or already confirmed with a receipt that verifies against the pinned
 * key, names this delivery and attests the saved digests. A refusal → exit 5; a bad receipt → exit 1.
 */
export function checkAnswer(answer: Answer, request: AnswerCheck): ConfirmOutcome {
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
