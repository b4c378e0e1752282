/** What HeldRunners needs of a TypeORM QueryRunner. */
export interface HeldRunner {
  readonly isReleased: boolean;
  release(): Promise<void>;
}

/**
 * Database connections (TypeORM query runners) that confirmation batches pass on to each other while
 * confirmations keep coming, instead of giving each back to the pool and waiting for one again: under
 * load, every committed batch publishes its events and each subscriber may start a query of its own
 * (the metrics' latency look-up does, one per confirmation), so the next batch would queue in the
 * pool behind all of them. At most `keep` are held, each for `idleMs` unused at the most; a runner
 * whose work failed is released (and a broken connection dropped by the pool), never held.
 */
export class HeldRunners<Runner extends HeldRunner> {
  private readonly idle: { runner: Runner; timer: NodeJS.Timeout }[] = [];
  private closed = false;

  constructor(
    private readonly create: () => Runner,
    private readonly keep: number,
    private readonly idleMs: number,
  ) {}

  /** A held runner, or a new one (which takes a pooled connection at its first query). */
  take(): Runner {
    for (let held = this.idle.pop(); held; held = this.idle.pop()) {
      clearTimeout(held.timer);
      // The pool's error handler releases a runner whose connection broke while it was held.
      if (!held.runner.isReleased) return held.runner;
    }
    return this.create();
  }

  /** Takes back a runner whose work succeeded: held for the next batch, or released. */
  async give(runner: Runner): Promise<void> {
    if (this.closed || runner.isReleased || this.idle.length >= this.keep) return runner.release();
    const held = {
      runner,
      timer: setTimeout(() => {
        const at = this.idle.indexOf(held);
        if (at !== -1) this.idle.splice(at, 1);
        void runner.release();
      }, this.idleMs),
    };
    held.timer.unref();
    this.idle.push(held);
  }

  /** Releases every held runner; later ones are released as they come back. */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle.splice(0);
    for (const { timer } of idle) clearTimeout(timer);
    await Promise.all(idle.map(({ runner }) => runner.release()));
  }

  /** Runners held right now (for tests). */
  get size(): number {
    return this.idle.length;
  }
}
