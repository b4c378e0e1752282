import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { DeliveriesService } from './deliveries.service.js';

const INTERVAL_NAME = 'delivery-expiry';

/**
 * [872] Every EXPIRY_CHECK_INTERVAL_MS, issued or sent deliveries that were not confirmed by their
 * expiry become `expired`, each with an `expired` event. Safe with several replicas: each batch is one
 * UPDATE … RETURNING over rows locked with SKIP LOCKED.
 */
@Injectable()
export class ExpiryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ExpiryService.name);
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly scheduler: SchedulerRegistry,
    private readonly config: AppConfig,
    private readonly deliveries: DeliveriesService,
  ) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval(
      INTERVAL_NAME,
      setInterval(() => void this.sweep(), this.config.expiryCheckIntervalMs),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.scheduler.doesExist('interval', INTERVAL_NAME)) this.scheduler.deleteInterval(INTERVAL_NAME);
    await this.running;
  }

  /** One sweep: batches until fewer than a batch were due. A sweep still running is not started again. */
  sweep(): Promise<void> {
    if (this.running || this.stopped) return this.running ?? Promise.resolve();
    this.running = this.expireAll()
      .catch((error: unknown) =>
        this.logger.warn(`expiry sweep failed (next one in ${this.config.expiryCheckIntervalMs} ms): ${(error as Error).message}`),
      )
      .finally(() => (this.running = null));
    return this.running;
  }

  private async expireAll(): Promise<void> {
    let total = 0;
    for (;;) {
      const expired = await this.deliveries.expireDue(this.config.expiryBatchSize);
      total += expired;
      if (expired < this.config.expiryBatchSize || this.stopped) break;
    }
    if (total > 0) this.logger.log(`${total} deliveries expired`);
  }
}
