import { DELIVERY_STATUSES, DeliveryStatus } from '../deliveries/delivery.entity.js';

/** A status filter of a distribution's recipients: a delivery status, or the two derived ones. */
export const RECIPIENT_FILTERS = [...DELIVERY_STATUSES, 'overdue', 'unconfirmed'] as const;
export type RecipientFilter = (typeof RECIPIENT_FILTERS)[number];

/** "Who has NOT received it": every status but confirmed and withdrawn (a cancelled pull is not owed). */
export const UNCONFIRMED_STATUSES: DeliveryStatus[] = ['pending', 'issued', 'sent', 'failed', 'expired'];

export type StatusCounts = Record<DeliveryStatus | 'total' | 'overdue' | 'unconfirmed', number>;

/** The statuses a filter selects; overdue selects the unconfirmed ones once the due time has passed, else none. */
export function statusesOf(filter: RecipientFilter | undefined, dueAt: Date | null, now: Date): DeliveryStatus[] {
  if (filter === undefined) return [...DELIVERY_STATUSES];
  if (filter === 'unconfirmed') return UNCONFIRMED_STATUSES;
  if (filter === 'overdue') return isPastDue(dueAt, now) ? UNCONFIRMED_STATUSES : [];
  return [filter];
}

export function isPastDue(dueAt: Date | null, now: Date): boolean {
  return dueAt !== null && dueAt.getTime() <= now.getTime();
}

/** The summary counts from the per-status counts of current deliveries (zeros filled; overdue, unconfirmed derived). */
export function summarise(byStatus: { status: DeliveryStatus; count: number }[], dueAt: Date | null, now: Date): StatusCounts {
  const counts = { total: 0, overdue: 0, unconfirmed: 0 } as StatusCounts;
  for (const status of DELIVERY_STATUSES) counts[status] = 0;
  for (const { status, count } of byStatus) {
    counts[status] += count;
    counts.total += count;
    if (UNCONFIRMED_STATUSES.includes(status)) counts.unconfirmed += count;
  }
  counts.overdue = isPastDue(dueAt, now) ? counts.unconfirmed : 0;
  return counts;
}
