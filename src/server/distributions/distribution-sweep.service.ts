import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AppConfig } from '../config/app-config.js';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import { DistributionRepository } from './distribution.repository.js';

const INTERVAL_NAME = 'distribution-sweep';

/**
 * Every EXPIRY_CHECK_INTERVAL_MS: superseded deliveries confirmed late replace their unconfirmed successors; distributions past due get overdue_at and one `recipient.overdue` event per
 * unconfirmed current delivery; those all confirmed get completed_at and a `distribution.completed` event. Each
 * is one set-based autocommit statement with its webhook outbox rows; a row updated once is not matched again.
 */
@Injectable()
export class DistributionSweepService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DistributionSweepService.name);
  private running: Promise<void> | null = null;

  constructor(
    private readonly scheduler: SchedulerRegistry,
    private readonly config: AppConfig,
    private readonly repository: DistributionRepository,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  onApplicationBootstrap(): void {
    this.scheduler.addInterval(
      INTERVAL_NAME,
      setInterval(() => void this.sweep(), this.config.expiryCheckIntervalMs),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.scheduler.doesExist('interval', INTERVAL_NAME)) this.scheduler.deleteInterval(INTERVAL_NAME);
    await this.running;
  }

  sweep(): Promise<void> {
    if (this.running) return this.running;
    this.running = this.once()
      .catch((error: unknown) => this.logger.warn(`distribution sweep failed: ${(error as Error).message}`))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async once(): Promise<void> {
    // First: a recipient who confirmed a superseded delivery is confirmed, neither overdue nor holding up completion.
    const reinstated = await this.unitOfWork.transaction((work) => this.repository.reinstateLateConfirmations(work));
    const overdue = await this.unitOfWork.statement((work) => this.repository.sweepOverdue(work));
    const completed = await this.unitOfWork.statement((work) => this.repository.sweepCompleted(work));
    if (reinstated + overdue + completed > 0) {
      this.logger.log(
        `${reinstated} late confirmations of superseded deliveries counted, ${overdue} recipients overdue, ${completed} distributions completed`,
      );
    }
  }
}
