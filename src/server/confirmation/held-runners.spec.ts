import { HeldRunner, HeldRunners } from './held-runners.js';

interface FakeRunner extends HeldRunner {
  isReleased: boolean;
  releases: number;
}

/** The part of a QueryRunner HeldRunners uses, counting releases. */
function fakeRunner(): FakeRunner {
  const runner: FakeRunner = {
    isReleased: false,
    releases: 0,
    release: async () => {
      runner.releases++;
      runner.isReleased = true;
    },
  };
  return runner;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('HeldRunners', () => {
  let created: ReturnType<typeof fakeRunner>[];
  const create = () => {
    const runner = fakeRunner();
    created.push(runner);
    return runner;
  };

  beforeEach(() => {
    created = [];
  });

  it('hands a runner given back to the next taker instead of a new one', async () => {
    const held = new HeldRunners(create, 2, 1000);
    const first = held.take();
    await held.give(first);
    expect(held.take()).toBe(first);
    expect(created).toHaveLength(1);
    expect(first.releases).toBe(0);
    await held.close();
  });

  it('holds at most `keep`; the others are released', async () => {
    const held = new HeldRunners(create, 1, 1000);
    const [a, b] = [held.take(), held.take()];
    await held.give(a);
    await held.give(b);
    expect(held.size).toBe(1);
    expect(b.isReleased).toBe(true);
    await held.close();
    expect(a.isReleased).toBe(true);
  });

  it('holds nothing with keep 0 (the embedded database has one connection for everything)', async () => {
    const held = new HeldRunners(create, 0, 1000);
    const runner = held.take();
    await held.give(runner);
    expect(runner.isReleased).toBe(true);
    expect(held.take()).not.toBe(runner);
  });

  it('releases a runner unused for idleMs', async () => {
    const held = new HeldRunners(create, 2, 20);
    const runner = held.take();
    await held.give(runner);
    await sleep(60);
    expect(runner.releases).toBe(1);
    expect(held.size).toBe(0);
    expect(held.take()).not.toBe(runner);
  });

  it('skips a held runner whose connection broke meanwhile (released by the pool error handler)', async () => {
    const held = new HeldRunners(create, 2, 1000);
    const broken = held.take();
    await held.give(broken);
    broken.isReleased = true;
    const next = held.take();
    expect(next).not.toBe(broken);
    expect(created).toHaveLength(2);
    await held.give(next);
    await held.close();
  });

  it('after close, releases what comes back and holds nothing', async () => {
    const held = new HeldRunners(create, 2, 1000);
    const busy = held.take();
    const idle = held.take();
    await held.give(idle);
    await held.close();
    expect(idle.releases).toBe(1);
    await held.give(busy);
    expect(busy.releases).toBe(1);
    expect(held.size).toBe(0);
  });
});
