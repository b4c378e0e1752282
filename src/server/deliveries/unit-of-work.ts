import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { DeliveryEventsBus, RecordedEvent } from './delivery-events.bus.js';

/**
 * Where a repository method runs its statements, and where it hands the audit-trail events they wrote:
 * the unit of work publishes them once its work committed.
 */
export interface Work {
  readonly manager: EntityManager;
  /** Hands over events written by this work; returns them. */
  recorded(events: RecordedEvent[]): RecordedEvent[];
}

/**
 * The one way to run work that appends audit-trail events: a subscriber of the bus never sees an event
 * that was rolled back. `transaction` wraps the work in BEGIN … COMMIT; `statement` is for work of one
 * autocommit statement (it commits alone, so it needs no transaction and no extra round trips).
 */
@Injectable()
export class UnitOfWork {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly bus: DeliveryEventsBus,
  ) {}

  async transaction<T>(work: (tx: Work) => Promise<T>): Promise<T> {
    const recorded: RecordedEvent[] = [];
    const result = await this.dataSource.manager.transaction((manager) => work(collecting(manager, recorded)));
    this.bus.publish(recorded);
    return result;
  }

  /** `manager`: a query runner's, to keep one connection for several statements. */
  async statement<T>(work: (tx: Work) => Promise<T>, manager: EntityManager = this.dataSource.manager): Promise<T> {
    // Publishing when the work returns is right only where each statement commits on its own.
    if (manager.queryRunner?.isTransactionActive) throw new Error('UnitOfWork.statement runs autocommit statements; use transaction()');
    const recorded: RecordedEvent[] = [];
    const result = await work(collecting(manager, recorded));
    this.bus.publish(recorded);
    return result;
  }
}

function collecting(manager: EntityManager, recorded: RecordedEvent[]): Work {
  return {
    manager,
    recorded: (events) => {
      recorded.push(...events);
      return events;
    },
  };
}
