/**
 * Group commit: units of work submitted while earlier ones are being written share one transaction,
 * so many concurrent requests cost one commit (one WAL flush) instead of one each. Each caller still
 * gets its answer only after its own work committed. An idle server writes every unit at once, alone.
 * One batch at a time by default: the next one gathers everything that arrived meanwhile, so batches
 * stay large.
 *
 * With `parallel` above 1, batches overlap as a pipeline: a writer calls the `handOver` it is given
 * once the part of its work that gathers the next batch's units is done (say, it read and decided, and
 * is now only waiting for its write to commit); only then may the next batch start, with everything
 * that arrived until then. So at most one batch is before its hand-over, batches stay large, and the
 * waits of one batch overlap the work of the next. A writer that never calls it runs one at a time.
 *
 * When a shared batch fails, it is written again in halves, down to single units, so one bad unit (say,
 * a content deleted meanwhile) fails only its own caller, and a batch that failed for a passing reason (a
 * deadlock) costs two more statements, not one per unit.
 */
export class GroupCommit<Item, Result> {
  private readonly queue: { item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }[] = [];
  private running = 0;
  /** A batch has started and not handed over yet: the next one waits. */
  private gathering = false;

  /**
   * @param write writes a batch in one transaction; returns one result per item, in order; may call
   *   `handOver` (once) when the next batch may start (see the class comment)
   * @param parallel batches written at the same time (each holds a database connection)
   * @param maxBatch items per batch at most
   */
  constructor(
    private readonly write: (items: Item[], handOver: () => void) => Promise<Result[]>,
    private readonly parallel = 1,
    private readonly maxBatch = 256,
  ) {}

  submit(item: Item): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      // Wait for the rest of this round of I/O: requests that arrived together are written together.
      if (this.queue.length === 1) setImmediate(() => this.pump());
    });
  }

  private pump(): void {
    while (!this.gathering && this.running < this.parallel && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.running++;
      this.gathering = true;
      let handedOver = false;
      const handOver = () => {
        if (handedOver) return;
        handedOver = true;
        this.gathering = false;
        this.pump();
      };
      const release = () => {
        this.running--;
        if (handedOver) this.pump();
        else handOver();
      };
      void this.run(batch, handOver, release);
    }
  }

  /**
   * Writes one batch. Once it is written the slot is released, so the next batch is on its way to the
   * database, and only a turn of the event loop later do this batch's callers go on: the database works
   * on the next batch while this process answers the callers of this one. A failed batch is written
   * again in halves (each caller settled as its part is), then the slot is released; it always is.
   */
  private async run(batch: typeof this.queue, handOver: () => void, release: () => void): Promise<void> {
    let results: Result[] | undefined;
    try {
      results = await this.writeBatch(batch, handOver);
    } catch (error) {
      await this.writeInHalves(batch, error);
    } finally {
      release();
    }
    const written = results;
    if (written !== undefined) setImmediate(() => batch.forEach(({ resolve }, i) => resolve(written[i])));
  }

  /** One result per unit, or an error: a batch that gives no result, or too few, has failed. */
  private async writeBatch(batch: typeof this.queue, handOver: () => void): Promise<Result[]> {
    const results = await this.write(
      batch.map(({ item }) => item),
      handOver,
    );
    if (!Array.isArray(results) || results.length !== batch.length) {
      throw new TypeError(`a batch of ${batch.length} gave ${Array.isArray(results) ? results.length : 'no'} results`);
    }
    return results;
  }

  /** After a batch failed with `error`: each half written again, and halved again if it fails. Never throws. */
  private async writeInHalves(batch: typeof this.queue, error: unknown): Promise<void> {
    if (batch.length === 1) return batch[0].reject(error);
    const middle = Math.ceil(batch.length / 2);
    for (const half of [batch.slice(0, middle), batch.slice(middle)]) {
      try {
        const results = await this.writeBatch(half, () => {});
        half.forEach(({ resolve }, i) => resolve(results[i]));
      } catch (halfError) {
        await this.writeInHalves(half, halfError);
      }
    }
  }
}
