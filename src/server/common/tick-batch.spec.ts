import { TickBatch } from './tick-batch.js';

describe('TickBatch', () => {
  test('look-ups asked in one turn share one load of their distinct keys, each gets its own value', async () => {
    const loads: string[][] = [];
    const batch = new TickBatch<string, string>((keys) => {
      loads.push(keys);
      return Promise.resolve(keys.map((key) => key.toUpperCase()));
    });
    const answers = await Promise.all([batch.get('a'), batch.get('b'), batch.get('a')]);
    expect(answers).toEqual(['A', 'B', 'A']);
    expect(loads).toEqual([['a', 'b']]);
    expect(await batch.get('c')).toBe('C');
    expect(loads).toEqual([['a', 'b'], ['c']]);
  });

  test('a failed load fails every look-up of its turn, and the next turn loads again', async () => {
    let fail = true;
    const batch = new TickBatch<number, number>((keys) =>
      fail ? Promise.reject(new Error('down')) : Promise.resolve(keys.map((key) => key * 2)),
    );
    await expect(Promise.all([batch.get(1), batch.get(2)])).rejects.toThrow('down');
    fail = false;
    expect(await batch.get(2)).toBe(4);
  });

  test('the load starts only after the look-ups of the turn were all asked', async () => {
    const started: number[] = [];
    let asked = 0;
    const batch = new TickBatch<number, number>((keys) => {
      started.push(asked);
      return Promise.resolve(keys);
    });
    const first = batch.get(1);
    asked++;
    const second = batch.get(2);
    asked++;
    await Promise.all([first, second]);
    expect(started).toEqual([2]);
  });
});
