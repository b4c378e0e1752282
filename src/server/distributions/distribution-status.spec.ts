import { statusesOf, summarise } from './distribution-status.js';

const NOW = new Date('2026-12-02T12:00:00Z');
const PAST = new Date('2026-12-01T12:00:00Z');
const FUTURE = new Date('2026-12-03T12:00:00Z');

describe('distribution status', () => {
  test('counts fill zeros; unconfirmed excludes confirmed and withdrawn; overdue only past due', () => {
    const rows = [
      { status: 'pending' as const, count: 3 },
      { status: 'sent' as const, count: 2 },
      { status: 'confirmed' as const, count: 5 },
      { status: 'withdrawn' as const, count: 1 },
    ];
    expect(summarise(rows, FUTURE, NOW)).toEqual({
      total: 11,
      pending: 3,
      issued: 0,
      sent: 2,
      confirmed: 5,
      failed: 0,
      expired: 0,
      withdrawn: 1,
      unconfirmed: 5,
      overdue: 0,
    });
    expect(summarise(rows, PAST, NOW).overdue).toBe(5);
    expect(summarise(rows, null, NOW).overdue).toBe(0);
  });

  test('filters: a status is itself; overdue is unconfirmed past due, nothing before', () => {
    expect(statusesOf('sent', null, NOW)).toEqual(['sent']);
    expect(statusesOf('unconfirmed', null, NOW)).toEqual(['pending', 'issued', 'sent', 'failed', 'expired']);
    expect(statusesOf('overdue', FUTURE, NOW)).toEqual([]);
    expect(statusesOf('overdue', PAST, NOW)).toEqual(['pending', 'issued', 'sent', 'failed', 'expired']);
    expect(statusesOf(undefined, null, NOW)).toHaveLength(7);
  });
});
