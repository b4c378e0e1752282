import { connect } from 'node:net';
import { Answer, decodeAnswer } from '../../src/protocol/answer.js';
import { FrameParser } from '../../src/protocol/frame.js';

/** Sends raw bytes to the confirmation port and collects every answer until the server closes or `count` arrive. */
export function exchange(port: number, bytes: Buffer, count = 1): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const answers: Answer[] = [];
    const parser = new FrameParser();
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.setTimeout(15_000, () => socket.destroy(new Error('no answer within 15 s')));
    socket.on('data', (chunk) => {
      parser.parse(chunk, (frame) => answers.push(decodeAnswer(frame)));
      if (answers.length >= count) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answers));
  });
}
