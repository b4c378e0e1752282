import { PageLimit } from '../../common/page-limit.js';

export class ListAttemptsQuery {
  /** Newest first, at most this many. */
  @PageLimit(500, 100)
  limit = 100;
}
