import { AnswerStatus, decodeAnswer, NO_DELIVERY_ID } from '../../protocol/answer.js';
import { ANSWER_MEDIA_TYPE } from '../../protocol/constants.js';
import { FrameParser } from '../../protocol/frame.js';
import { httpAnswer, TRY_LATER_RETRY_AFTER_SECONDS } from './confirmation-http.js';

const ID = '0f0e0d0c-0b0a-4908-8706-050403020100';

describe('httpAnswer: an answer frame as POST /api/confirmations sends it', () => {
  test.each([
    [AnswerStatus.Accepted, 200],
    [AnswerStatus.AlreadyConfirmed, 200],
    [AnswerStatus.Unknown, 200],
    [AnswerStatus.Expired, 200],
    [AnswerStatus.ClientMismatch, 200],
    [AnswerStatus.DigestMismatch, 200],
    [AnswerStatus.SealInvalid, 200],
    [AnswerStatus.Malformed, 400],
    [AnswerStatus.TryLater, 503],
  ])('status %i → HTTP %i, the answer frame as the body', (status, http) => {
    const receipt = status === AnswerStatus.Accepted ? Buffer.from('receipt') : null;
    const answer = { status, deliveryId: status === AnswerStatus.Malformed ? NO_DELIVERY_ID : ID, message: 'why', receipt };
    const reply = httpAnswer(answer);
    expect(reply.status).toBe(http);
    expect(reply.headers['content-type']).toBe(ANSWER_MEDIA_TYPE);
    expect(reply.headers['content-length']).toBe(String(reply.body.length));
    expect(reply.headers['retry-after']).toBe(status === AnswerStatus.TryLater ? String(TRY_LATER_RETRY_AFTER_SECONDS) : undefined);
    const decoded: unknown[] = [];
    new FrameParser().parse(reply.body, (frame) => decoded.push(decodeAnswer(frame)));
    expect(decoded).toEqual([answer]);
  });
});
