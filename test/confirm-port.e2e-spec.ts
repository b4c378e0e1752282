import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { newDeliveryId } from '../src/protocol/delivery-id.js';
import { RunningServer, startServer } from './support/server-process.js';
import { exchange } from './support/tcp.js';

const IDLE_TIMEOUT_MS = 1000;

/** The confirmation port under abusive peers: a trickled frame, and many frames pipelined at once. */
describe('confirmation port limits', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer('postgres', { CONFIRM_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) });
  });

  afterAll(async () => {
    await server?.stop();
  });

  function unknownConfirmation(deliveryId = newDeliveryId()): Buffer {
    return encodeConfirmation(
      { deliveryId, clientFingerprint: randomBytes(32).toString('hex'), digests: [randomBytes(32).toString('hex')] },
      randomBytes(32),
    );
  }

  test('a frame trickled a byte at a time (slow-loris) is cut off one idle timeout after its first byte', async () => {
    const frame = unknownConfirmation();
    const outcome = await new Promise<{ sent: number; answer: Buffer }>((resolve, reject) => {
      let sent = 0;
      const received: Buffer[] = [];
      const socket = connect(server.confirmPort, '127.0.0.1');
      // Each byte comes well within the idle timeout, so only a per-frame deadline ends this.
      const trickle = setInterval(() => {
        if (sent < frame.length && !socket.destroyed) socket.write(frame.subarray(sent, ++sent));
      }, IDLE_TIMEOUT_MS / 5);
      socket.on('data', (chunk) => received.push(chunk));
      socket.on('error', reject);
      socket.on('close', () => {
        clearInterval(trickle);
        resolve({ sent, answer: Buffer.concat(received) });
      });
    });
    expect(outcome.sent).toBeLessThan(frame.length);
    expect(outcome.answer.toString('latin1')).toContain(`frame not completed within ${IDLE_TIMEOUT_MS} ms`);
  });

  test('hundreds of pipelined frames are all answered, in order, while the server reads only a few ahead', async () => {
    const ids = Array.from({ length: 300 }, () => newDeliveryId());
    const answers = await exchange(server.confirmPort, Buffer.concat(ids.map((id) => unknownConfirmation(id))), ids.length);
    expect(answers.every((answer) => answer.status === AnswerStatus.Unknown)).toBe(true);
    expect(answers.map((answer) => answer.deliveryId)).toEqual(ids);
  });
});
