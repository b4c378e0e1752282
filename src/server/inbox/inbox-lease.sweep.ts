import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InboxRepository } from './inbox.repository.js';
import { InboxStreamsService } from './inbox-streams.service.js';

/** How often expired leases are looked for: a lease outlives its end by at most this (leases last 10 s or more). */
export const LEASE_SWEEP_INTERVAL_MS = 1000;
/** Leases deleted per statement; a backlog goes in several sweeps. */
export const LEASE_SWEEP_BATCH = 1000;

/**
 * A lease that expired unacknowledged returns its delivery to the inbox by itself (the next lease ignores an
 * expired one); this sweep deletes such leases and sends the recipient a `waiting` notice, so that an agent that
 * left its lease behind (suspended, killed) gets the delivery again without polling.
 */
@Injectable()
export class InboxLeaseSweep implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(InboxLeaseSweep.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;

  constructor(
    private readonly inbox: InboxRepository,
    private readonly streams: InboxStreamsService,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.sweep(), LEASE_SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep at a time: a slow one is not overlapped by the next tick. */
  sweep(): Promise<void> {
    this.running ??= this.sweepOnce().finally(() => (this.running = null));
    return this.running;
  }

  private async sweepOnce(): Promise<void> {
    try {
      for (;;) {
        const expired = await this.inbox.sweepExpired(LEASE_SWEEP_BATCH);
        const recipientIds = [...new Set(expired.flatMap(({ recipientId }) => (recipientId ? [recipientId] : [])))];
        if (recipientIds.length > 0) this.streams.announce({ recipientIds });
        if (expired.length < LEASE_SWEEP_BATCH) return;
      }
    } catch (error) {
      this.logger.warn(`expired inbox leases not swept: ${(error as Error).message}`);
    }
  }
}
