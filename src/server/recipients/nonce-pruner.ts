import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { REQUEST_AUTH_MAX_SKEW_MS } from '../../protocol/constants.js';
import { RequestAuthRepository } from './request-auth.repository.js';

const INTERVAL_NAME = 'request-nonce-pruning';
const PRUNE_EVERY_MS = 60_000;

/**
 * A nonce must be remembered while a request carrying it could still pass the timestamp check: its
 * timestamp is within the skew of when it was first seen, and is accepted for the skew after that.
 */
export const NONCE_RETENTION_MS = 2 * REQUEST_AUTH_MAX_SKEW_MS;

/** Every minute, deletes the nonces of signed requests that no fresh request can reuse any more. */
@Injectable()
export class NoncePruner implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(NoncePruner.name);
  private running: Promise<void> | null = null;

  constructor(
    private readonly scheduler: SchedulerRegistry,
    private readonly nonces: RequestAuthRepository,
  ) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval(
      INTERVAL_NAME,
      setInterval(() => void this.prune(), PRUNE_EVERY_MS),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', INTERVAL_NAME)) this.scheduler.deleteInterval(INTERVAL_NAME);
    await this.running;
  }

  /** One pruning pass; one still running is not started again. */
  prune(): Promise<void> {
    this.running ??= this.nonces
      .pruneNonces(NONCE_RETENTION_MS)
      .then((pruned) => void (pruned > 0 && this.logger.debug(`pruned ${pruned} request nonces`)))
      .catch((error: unknown) => this.logger.warn(`request nonce pruning failed: ${(error as Error).message}`))
      .finally(() => (this.running = null));
    return this.running;
  }
}
