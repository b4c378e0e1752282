import { byeEvent, heartbeatComment, retryField, waitingEvent } from './inbox-events.js';

describe('inbox server-sent events (docs/design/resident-agent.md §2)', () => {
  test('each is one SSE block ending in a blank line, with the fields of the contract', () => {
    expect(retryField(5000)).toBe('retry: 5000\n\n');
    expect(waitingEvent(3)).toBe('event: waiting\ndata: {"count":3}\n\n');
    expect(heartbeatComment(new Date('2026-12-03T14:00:00Z'))).toBe(': hb 2026-12-03T14:00:00.000Z\n\n');
    expect(byeEvent(5000, 'shutdown')).toBe('event: bye\ndata: {"retryMs":5000,"reason":"shutdown"}\n\n');
    expect(byeEvent(250, 'replaced')).toBe('event: bye\ndata: {"retryMs":250,"reason":"replaced"}\n\n');
  });
});
