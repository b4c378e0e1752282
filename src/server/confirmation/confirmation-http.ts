import { Answer, AnswerStatus, encodeAnswer } from '../../protocol/answer.js';
import { ANSWER_MEDIA_TYPE } from '../../protocol/constants.js';

/** What a "try later" answer over HTTP suggests as Retry-After: as long as the client's own first TCP retry. */
export const TRY_LATER_RETRY_AFTER_SECONDS = 1;

/** One answer frame as an HTTP response. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * [89] An answer as POST /api/confirmations sends it (PROTOCOL.md §4.1): the frame is the answer, the HTTP
 * status only says what a proxy or a generic HTTP client needs: 200 for every decision (the refusal is in the
 * frame), 503 + Retry-After for "try later" (nothing was decided), 400 for bytes that are no confirmation.
 */
export function httpAnswer(answer: Answer): HttpAnswer {
  const body = encodeAnswer(answer);
  const headers: Record<string, string> = {
    'content-type': ANSWER_MEDIA_TYPE,
    'content-length': String(body.length),
    'cache-control': 'no-store',
  };
  if (answer.status === AnswerStatus.TryLater) {
    return { status: 503, headers: { ...headers, 'retry-after': String(TRY_LATER_RETRY_AFTER_SECONDS) }, body };
  }
  return { status: answer.status === AnswerStatus.Malformed ? 400 : 200, headers, body };
}
