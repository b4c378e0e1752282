import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppConfig } from '../config/app-config.js';
import { DeliveryEventsBus, type RecordedEvent } from '../deliveries/delivery-events.bus.js';
import type { InboxRepository, Listener, NoticeScope } from './inbox.repository.js';
import { InboxStreamsService, MAX_UNSENT_BYTES } from './inbox-streams.service.js';

/** A response that keeps what was written to it. */
class FakeResponse extends EventEmitter {
  chunks: string[] = [];
  ended = false;
  destroyed = false;
  writableLength = 0;
  writeHead = () => this;
  write(chunk: string | Buffer): boolean {
    this.chunks.push(String(chunk));
    return true;
  }
  end(chunk?: string): this {
    if (chunk) this.chunks.push(chunk);
    this.ended = true;
    this.emit('close');
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    this.emit('close');
    return this;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

const request = { socket: { setTimeout: () => undefined, setNoDelay: () => undefined } } as unknown as IncomingMessage;
const HEARTBEAT_MS = 40;
const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setUp(counts: (listeners: Listener[], scope: NoticeScope) => (Listener & { count: number })[] = () => []) {
  const calls: { listeners: Listener[]; scope: NoticeScope }[] = [];
  const repository = {
    waitingCounts: (listeners: Listener[], scope: NoticeScope) => {
      calls.push({ listeners, scope });
      return Promise.resolve(counts(listeners, scope));
    },
  } as unknown as InboxRepository;
  const bus = new DeliveryEventsBus();
  const config = { inboxHeartbeatMs: HEARTBEAT_MS, inboxReconnectMs: 2000 } as AppConfig;
  const service = new InboxStreamsService(config, repository, bus);
  service.onModuleInit();
  const open = (recipientId: string, fingerprint: string) => {
    const res = new FakeResponse();
    service.open({ recipientId, fingerprint, publicKey: Buffer.alloc(32) }, request, res as unknown as ServerResponse);
    return res;
  };
  return { service, bus, calls, open };
}

const event = (type: RecordedEvent['type'], detail: RecordedEvent['detail']): RecordedEvent => ({
  id: '1',
  deliveryId: null,
  type,
  status: null,
  reason: null,
  remoteAddress: null,
  at: new Date(),
  detail,
});

describe('InboxStreamsService', () => {
  test('a stream starts with retry, and gets `waiting` on connect only when something waits', async () => {
    const { service, open } = setUp((listeners) => listeners.filter((l) => l.fingerprint === 'f-a').map((l) => ({ ...l, count: 2 })));
    const a = open('r-a', 'f-a');
    const b = open('r-b', 'f-b');
    await tick();
    expect(a.text).toBe('retry: 2000\n\nevent: waiting\ndata: {"count":2}\n\n');
    expect(b.text).toBe('retry: 2000\n\n');
    service.onModuleDestroy();
  });

  test('a distribution announced on the bus: one statement for every stream, notices to those with something waiting', async () => {
    const { service, bus, calls, open } = setUp((listeners, scope) =>
      scope.distributionIds.length > 0 ? listeners.filter((l) => l.recipientId !== 'r-c').map((l) => ({ ...l, count: 1 })) : [],
    );
    const streams = ['a', 'b', 'c'].map((x) => open(`r-${x}`, `f-${x}`));
    await tick();
    calls.length = 0;
    bus.publish([event('distributed', { distributionId: 'd-1' }), event('reissued', { newDeliveryId: 'n-1', distributionId: 'd-2' })]);
    await tick();
    await tick();
    expect(calls).toHaveLength(1);
    expect(calls[0].scope).toEqual({ recipientIds: [], distributionIds: ['d-1'], deliveryIds: ['n-1'] });
    expect(calls[0].listeners.map((l) => l.fingerprint)).toEqual(['f-a', 'f-b', 'f-c']);
    expect(streams.map((s) => s.text.includes('event: waiting'))).toEqual([true, true, false]);
    service.onModuleDestroy();
  });

  test('no stream open: an announcement costs no statement', async () => {
    const { service, calls } = setUp();
    service.announce({ recipientIds: ['r-a'] });
    await tick();
    expect(calls).toEqual([]);
    service.onModuleDestroy();
  });

  test('one timer beats every stream; a closed stream is forgotten', async () => {
    const { service, open } = setUp();
    const a = open('r-a', 'f-a');
    const b = open('r-b', 'f-b');
    b.emit('close');
    await sleep(HEARTBEAT_MS * 3.5);
    expect(a.chunks.filter((c) => c.startsWith(': hb ')).length).toBeGreaterThanOrEqual(2);
    expect(b.chunks.filter((c) => c.startsWith(': hb '))).toEqual([]);
    expect(service.size).toBe(1);
    service.onModuleDestroy();
  });

  test('a second stream of an installation ends the first with bye "replaced"; shutdown ends the rest with bye "shutdown"', async () => {
    const { service, open } = setUp();
    const first = open('r-a', 'f-a');
    const second = open('r-a', 'f-a');
    expect(first.ended).toBe(true);
    expect(first.text.endsWith('event: bye\ndata: {"retryMs":2000,"reason":"replaced"}\n\n')).toBe(true);
    expect(service.size).toBe(1);
    service.onModuleDestroy();
    expect(second.text.endsWith('event: bye\ndata: {"retryMs":2000,"reason":"shutdown"}\n\n')).toBe(true);
    // A stream opened while shutting down is told at once.
    const late = open('r-b', 'f-b');
    expect([late.ended, late.text]).toEqual([true, 'retry: 2000\n\nevent: bye\ndata: {"retryMs":2000,"reason":"shutdown"}\n\n']);
  });

  test('a client that reads nothing is cut off once its unsent bytes pass the cap', async () => {
    const { service, open } = setUp();
    const stuck = open('r-a', 'f-a');
    stuck.writableLength = MAX_UNSENT_BYTES + 1;
    await sleep(HEARTBEAT_MS * 1.5);
    expect(stuck.destroyed).toBe(true);
    expect(service.size).toBe(0);
    service.onModuleDestroy();
  });
});
