import { GroupCommit } from './group-commit.js';

/** A promise and its resolver, to hold a batch's write open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets setImmediate callbacks and the promise reactions after them run. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * A group whose first batch is held open until released; its writers hand over at once when `handsOver`.
 * `run` submits 1, then (a turn later, while batch 1 is held) `later`, and answers the batches started
 * while it was held and all of them once every unit is written.
 */
function heldFirstBatch(parallel: number, handsOver: boolean) {
  const batches: number[][] = [];
  const first = gate();
  const group = new GroupCommit<number, number>(async (items, handOver) => {
    batches.push(items);
    if (handsOver) handOver();
    if (batches.length === 1) await first.promise;
    return items;
  }, parallel);
  return {
    async run(later: number[]): Promise<{ whileHeld: number[][]; all: number[][] }> {
      const results = [group.submit(1)];
      await turn();
      results.push(...later.map((n) => group.submit(n)));
      await turn();
      const whileHeld = [...batches];
      first.open();
      await Promise.all(results);
      return { whileHeld, all: batches };
    },
  };
}

describe('GroupCommit', () => {
  it('writes units submitted together as one batch, each caller getting its own result', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      return items.map((n) => n * 10);
    });
    await expect(Promise.all([1, 2, 3].map((n) => group.submit(n)))).resolves.toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('by default writes one batch at a time, the next gathering all that arrived meanwhile', async () => {
    await expect(heldFirstBatch(1, false).run([2, 3])).resolves.toEqual({ whileHeld: [[1]], all: [[1], [2, 3]] });
  });

  it('by default ignores a hand-over: still one batch at a time', async () => {
    await expect(heldFirstBatch(1, true).run([2])).resolves.toEqual({ whileHeld: [[1]], all: [[1], [2]] });
  });

  it('pipelined: the next batch starts only once the running one hands over, with everything queued until then', async () => {
    const batches: number[][] = [];
    const handOvers: (() => void)[] = [];
    const commits: ReturnType<typeof gate>[] = [];
    const group = new GroupCommit<number, number>(async (items, handOver) => {
      batches.push(items);
      handOvers.push(handOver);
      const commit = gate();
      commits.push(commit);
      await commit.promise;
      return items;
    }, 2);

    const results = [group.submit(1)];
    await turn();
    results.push(group.submit(2));
    await turn();
    results.push(group.submit(3));
    await turn();
    expect(batches).toEqual([[1]]); // a slot is free, but batch 1 is still gathering (deciding)

    handOvers[0]();
    expect(batches).toEqual([[1], [2, 3]]);
    results.push(group.submit(4));
    await turn();
    handOvers[1](); // both slots taken: 4 waits for a batch to finish
    await turn();
    expect(batches).toEqual([[1], [2, 3]]);

    commits[0].open();
    await results[0];
    await turn();
    expect(batches).toEqual([[1], [2, 3], [4]]);
    commits[1].open();
    commits[2].open();
    await expect(Promise.all(results)).resolves.toEqual([1, 2, 3, 4]);
  });

  it('pipelined: a batch that never hands over holds the next one back until it ends', async () => {
    await expect(heldFirstBatch(2, false).run([2])).resolves.toEqual({ whileHeld: [[1]], all: [[1], [2]] });
  });

  it('starts the next batch before the callers of the one just written go on (the database is kept busy meanwhile)', async () => {
    const events: string[] = [];
    const first = gate();
    const group = new GroupCommit<number, number>(async (items) => {
      events.push(`write ${items.join(',')}`);
      if (items.includes(1)) await first.promise;
      return items;
    });
    const results = [group.submit(1).then(() => events.push('caller 1'))];
    await turn();
    results.push(group.submit(2).then(() => events.push('caller 2')));
    await turn();
    first.open();
    await Promise.all(results);
    expect(events).toEqual(['write 1', 'write 2', 'caller 1', 'caller 2']);
  });

  it('writes a failed batch again in halves, down to the bad unit, which alone fails', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      if (items.includes(2)) throw new Error('unit 2 is bad');
      return items;
    }, 2);
    const results = await Promise.allSettled([1, 2, 3].map((n) => group.submit(n)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error('unit 2 is bad'));
    expect(batches).toEqual([[1, 2, 3], [1, 2], [1], [2], [3]]);
  });

  it('a batch that failed for a passing reason costs two more writes, not one per unit', async () => {
    const batches: number[][] = [];
    let failures = 1;
    const group = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      if (failures-- > 0) throw new Error('deadlock detected');
      return items;
    });
    const units = Array.from({ length: 100 }, (_, i) => i);
    await expect(Promise.all(units.map((n) => group.submit(n)))).resolves.toEqual(units);
    expect(batches).toEqual([units, units.slice(0, 50), units.slice(50)]);
  });

  it('frees its slot whatever a failed batch throws, so later units are still written', async () => {
    let calls = 0;
    const group = new GroupCommit<number, number>((items) => {
      calls++;
      if (calls === 1) throw 'not even an Error'; // thrown synchronously
      if (items.includes(2)) return Promise.resolve(undefined as unknown as number[]); // a malformed result
      return Promise.resolve(items);
    });
    const first = await Promise.allSettled([1, 2].map((n) => group.submit(n)));
    expect(first.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    await expect(group.submit(3)).resolves.toBe(3);
  });

  it('treats a batch that gives no result, or too few, as failed: written again in halves, no caller left waiting', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      if (items.length === 1) return items;
      return (items.includes(5) ? undefined : items.slice(1)) as unknown as number[];
    });
    await expect(Promise.all([1, 2, 3].map((n) => group.submit(n)))).resolves.toEqual([1, 2, 3]);
    await expect(Promise.all([4, 5].map((n) => group.submit(n)))).resolves.toEqual([4, 5]);
    expect(batches).toEqual([[1, 2, 3], [1, 2], [1], [2], [3], [4, 5], [4], [5]]);
  });

  it('caps a batch at maxBatch units', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items;
      },
      1,
      2,
    );
    await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
  });
});
