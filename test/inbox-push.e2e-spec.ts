// Issue 16, the server side of the resident agent (docs/design/resident-agent.md §2-3) against the real built
// server: the signed push-notice stream read by a real HTTP client, acquire next with deletion with real bundles
// and real confirmation frames, leases (concurrency, expiry), refusals, one stream per installation, `bye`.
import { createHash, randomBytes } from 'node:crypto';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import unzipper from 'unzipper';
import { answerStatusName, decodeAnswer } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../src/protocol/constants.js';
import { FrameParser, type Frame } from '../src/protocol/frame.js';
import { generateClientIdentity, type ClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { clientRequestAuthKey, signRequest } from '../src/protocol/request-auth.js';
import { publish } from './support/cli-process.js';
import { eventually } from './support/eventually.js';
import { pinOf, signedFetch, type Pin } from './support/recipient-requests.js';
import { DatabaseMode, RunningServer, startServer } from './support/server-process.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
/** Heartbeats this often in the tests, so that one is seen within a test's patience. */
const TEST_HEARTBEAT = '500ms';
const TEST_RECONNECT_MS = 1500;
/** The contract's shortest lease: expiry is waited out once. */
const SHORT_LEASE_SECONDS = 10;

interface SseEvent {
  event: string;
  data: string;
}

interface InboxItem {
  deliveryId: string;
  distributionId: string;
  name: string;
  sha256: string;
  bundleUrl: string;
  leaseExpiresAt: string | null;
}

interface NextAnswer {
  acked: { deliveryId: string; status: string; answer: string } | null;
  next: (InboxItem & { leaseExpiresAt: string }) | null;
  waiting: number;
}

/** A signed `GET /api/inbox/events` read by node:http as it arrives: events, comments and the `retry:` field. */
class EventStreamClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | null = null;
  status = 0;
  contentType = '';
  ended = false;
  private buffer = '';
  private req!: ClientRequest;
  private readonly ready: Promise<void>;

  constructor(server: RunningServer, pin: Pin, identity: ClientIdentity | null) {
    const path = '/api/inbox/events';
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (identity) {
      const key = clientRequestAuthKey(identity.privateKey, identity.publicKey, pin.sealKey);
      headers[CLIENT_KEY_HEADER] = identity.publicKey.toString('base64url');
      headers[REQUEST_AUTH_HEADER] = signRequest(key, pin.keyId, { method: 'GET', path });
    }
    this.ready = new Promise((resolve, reject) => {
      this.req = request(`${server.url}${path}`, { headers, agent: false }, (res: IncomingMessage) => {
        this.status = res.statusCode ?? 0;
        this.contentType = String(res.headers['content-type'] ?? '');
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.parse(chunk));
        res.on('end', () => (this.ended = true));
        res.on('close', () => (this.ended = true));
        resolve();
      });
      this.req.on('error', (error) => {
        this.ended = true;
        reject(error);
      });
      this.req.end();
    });
  }

  opened(): Promise<void> {
    return this.ready;
  }

  private parse(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('retry:')) this.retry = Number(line.slice(6).trim());
        else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trim());
      }
      if (data.length > 0) this.events.push({ event, data: data.join('\n') });
    }
  }

  named(name: string): SseEvent[] {
    return this.events.filter(({ event }) => event === name);
  }

  /** Waits for the `n`-th event of that name (1-based). */
  async nth(name: string, n: number, timeoutMs = 5000): Promise<unknown> {
    const found = await eventually(
      async () => this.named(name),
      (events) => events.length >= n,
      timeoutMs,
      25,
    );
    if (found.length < n) throw new Error(`no ${n}th ${name} event within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
    return JSON.parse(found[n - 1].data);
  }

  close(): void {
    this.req.destroy();
  }
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect({ status: response.status, text: response.status === status ? '' : text }).toEqual({ status, text: '' });
  return JSON.parse(text) as T;
}

function adminJson(server: RunningServer, method: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
}

/** An enrolled installation: its key, its recipient and how it signs requests. */
interface Agent {
  identity: ClientIdentity;
  recipientId: string;
  fetch: (method: string, path: string, body?: unknown) => Promise<Response>;
  next: (body?: unknown) => Promise<NextAnswer>;
  stream: () => Promise<EventStreamClient>;
}

async function enrol(server: RunningServer, pin: Pin, name: string): Promise<Agent> {
  const code = await json<{ code: string }>(
    await adminJson(server, 'POST', '/api/recipients/enrolment-codes', { name, expiresIn: '1h' }),
    201,
  );
  const identity = generateClientIdentity();
  const enrolled = await json<{ recipientId: string }>(
    await signedFetch(server.url, pin, identity, 'POST', '/api/recipients/enrol', { code: code.code }),
    201,
  );
  const agentFetch = (method: string, path: string, body?: unknown) => signedFetch(server.url, pin, identity, method, path, body);
  return {
    identity,
    recipientId: enrolled.recipientId,
    fetch: agentFetch,
    next: async (body = {}) => json<NextAnswer>(await agentFetch('POST', '/api/inbox/next', body), 200),
    stream: async () => {
      const stream = new EventStreamClient(server, pin, identity);
      await stream.opened();
      return stream;
    },
  };
}

async function distribute(server: RunningServer, contentId: string, recipients: string[]): Promise<string> {
  return (await json<{ id: string }>(await adminJson(server, 'POST', '/api/distributions', { contentId, recipients }), 201)).id;
}

/** The leased delivery pulled with its personal link, opened with the installation's key: a real confirmation of it. */
async function pullAndConfirm(agent: Agent, item: InboxItem, digest?: string): Promise<{ content: Buffer; confirmation: string }> {
  const response = await agent.fetch('GET', new URL(item.bundleUrl).pathname);
  expect(response.status).toBe(200);
  const bundle = Buffer.from(await response.arrayBuffer());
  const directory = await unzipper.Open.buffer(bundle);
  const plugin = await directory.files[0].buffer();
  const content = await directory.files[1].buffer();
  const { data } = openPluginData(plugin, { identity: agent.identity });
  expect(data.deliveryId).toBe(item.deliveryId);
  const frame = encodeConfirmation(
    { deliveryId: data.deliveryId, clientFingerprint: agent.identity.fingerprint, digests: [digest ?? sha256(content)] },
    data.confirmSecret,
  );
  return { content, confirmation: frame.toString('base64') };
}

function frameOf(base64: string): Frame {
  const frames: Frame[] = [];
  new FrameParser().parse(Buffer.from(base64, 'base64'), (frame) => frames.push(frame));
  expect(frames).toHaveLength(1);
  return frames[0];
}

async function setUp(mode: DatabaseMode) {
  const server = await startServer(mode, { INBOX_HEARTBEAT: TEST_HEARTBEAT, INBOX_RECONNECT_MS: String(TEST_RECONNECT_MS) });
  const pin = await pinOf(server.url);
  const work = await mkdtemp(join(tmpdir(), 'dcx-inbox-push-'));
  const document = randomBytes(10 * 1024);
  await writeFile(join(work, 'policy.pdf'), document);
  const content = await publish(server, join(work, 'policy.pdf'), 'public');
  return { server, pin, document, contentId: content.id };
}

describe('inbox push notices and acquire next with deletion (postgres)', () => {
  let server: RunningServer;
  let pin: Pin;
  let db: pg.Client;
  let contentId: string;
  let document: Buffer;
  let ada: Agent;
  let blaise: Agent;
  let adaStream: EventStreamClient;
  let blaiseStream: EventStreamClient;

  const statusOf = async (id: string) =>
    (await db.query<{ status: string; receipt: Buffer | null }>(`SELECT status, receipt FROM deliveries WHERE id = $1`, [id])).rows[0];
  const refusalsOf = async (id: string | null, claimed?: string) =>
    (
      await db.query<{ reason: string }>(
        id
          ? `SELECT reason FROM delivery_events WHERE delivery_id = $1 AND type = 'refused' ORDER BY id`
          : `SELECT reason FROM delivery_events WHERE delivery_id IS NULL AND type = 'refused' AND detail->>'claimedDeliveryId' = $1 ORDER BY id`,
        [id ?? claimed],
      )
    ).rows.map(({ reason }) => reason);

  beforeAll(async () => {
    ({ server, pin, document, contentId } = await setUp('postgres'));
    db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
    ada = await enrol(server, pin, 'Ada');
    blaise = await enrol(server, pin, 'Blaise');
  });

  afterAll(async () => {
    adaStream?.close();
    blaiseStream?.close();
    await server?.stop();
  });

  test('unsigned, wrongly signed or not enrolled: 401 on the stream and on next', async () => {
    const unsigned = new EventStreamClient(server, pin, null);
    await unsigned.opened();
    expect(unsigned.status).toBe(401);
    const stranger = new EventStreamClient(server, pin, generateClientIdentity());
    await stranger.opened();
    expect(stranger.status).toBe(401);
    // Signed for another server key: the MAC does not verify.
    const wrongPin = { ...pin, sealKey: generateClientIdentity().publicKey };
    const wrongKey = new EventStreamClient(server, wrongPin, ada.identity);
    await wrongKey.opened();
    expect(wrongKey.status).toBe(401);
    expect((await fetch(`${server.url}/api/inbox/next`, { method: 'POST', headers: { connection: 'close' } })).status).toBe(401);
    const strangerNext = await signedFetch(server.url, pin, generateClientIdentity(), 'POST', '/api/inbox/next', {});
    expect(strangerNext.status).toBe(401);
  });

  test('a stream starts with retry and heartbeats; a distribution notifies its recipient only', async () => {
    adaStream = await ada.stream();
    blaiseStream = await blaise.stream();
    expect([adaStream.status, adaStream.contentType]).toEqual([200, 'text/event-stream; charset=utf-8']);
    await eventually(
      async () => adaStream.comments.length,
      (n) => n >= 2,
      3000,
    );
    expect(adaStream.retry).toBe(TEST_RECONNECT_MS);
    expect(adaStream.comments[0]).toMatch(/^hb \d{4}-\d\d-\d\dT/);
    // Nothing waits yet: no waiting event on connect.
    expect(adaStream.named('waiting')).toEqual([]);

    await distribute(server, contentId, [ada.recipientId]);
    expect(await adaStream.nth('waiting', 1)).toEqual({ count: 1 });
    await distribute(server, contentId, [ada.recipientId]);
    expect(await adaStream.nth('waiting', 2)).toEqual({ count: 2 });
    // Blaise's stream got heartbeats meanwhile, and no notice.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(blaiseStream.named('waiting')).toEqual([]);
    expect(blaiseStream.comments.length).toBeGreaterThan(0);
  });

  test('next leases, the bundle is pulled, the ack confirms it (one receipt) and leases the next; a repeated ack is idempotent', async () => {
    const first = await ada.next();
    expect(first).toMatchObject({ acked: null, waiting: 1, next: { name: 'policy.pdf', sha256: sha256(document) } });
    const leased = first.next!;
    expect(Date.parse(leased.leaseExpiresAt) - Date.now()).toBeGreaterThan(4 * 60_000); // INBOX_LEASE default 5 min
    const listed = await json<{ items: InboxItem[] }>(await ada.fetch('GET', '/api/inbox'), 200);
    expect(listed.items.map((i) => [i.deliveryId, i.leaseExpiresAt !== null])).toEqual([
      [leased.deliveryId, true],
      [expect.any(String), false],
    ]);

    const { content, confirmation } = await pullAndConfirm(ada, leased);
    expect(content.equals(document)).toBe(true);
    const second = await ada.next({ ack: { deliveryId: leased.deliveryId, confirmation } });
    expect(second.acked).toMatchObject({ deliveryId: leased.deliveryId, status: 'accepted' });
    const answer = decodeAnswer(frameOf(second.acked!.answer));
    expect([answerStatusName(answer.status), answer.deliveryId, (answer.receipt?.length ?? 0) > 0]).toEqual([
      'accepted',
      leased.deliveryId,
      true,
    ]);
    expect(second.next?.deliveryId).toBe(listed.items[1].deliveryId);
    expect(second.waiting).toBe(0);
    const row = await statusOf(leased.deliveryId);
    expect(row.status).toBe('confirmed');
    expect(row.receipt!.equals(answer.receipt!)).toBe(true);
    const confirmedEvents = await db.query(`SELECT 1 FROM delivery_events WHERE delivery_id = $1 AND type = 'confirmed'`, [
      leased.deliveryId,
    ]);
    expect(confirmedEvents.rowCount).toBe(1);
    expect((await db.query(`SELECT 1 FROM inbox_leases WHERE delivery_id = $1`, [leased.deliveryId])).rowCount).toBe(0);

    // The same ack again: already confirmed, the same receipt, nothing recorded twice; the next is still leased.
    const again = await ada.next({ ack: { deliveryId: leased.deliveryId, confirmation } });
    expect(again).toMatchObject({ acked: { status: 'already_confirmed' }, next: null, waiting: 0 });
    expect(decodeAnswer(frameOf(again.acked!.answer)).receipt!.equals(answer.receipt!)).toBe(true);
    expect(
      (await db.query(`SELECT 1 FROM delivery_events WHERE delivery_id = $1 AND type = 'confirmed'`, [leased.deliveryId])).rowCount,
    ).toBe(1);
    const inbox = await json<{ items: InboxItem[] }>(await ada.fetch('GET', '/api/inbox'), 200);
    expect(inbox.items.map((i) => i.deliveryId)).toEqual([second.next!.deliveryId]);

    // A refused ack (another digest) answers its refusal; the delivery stays in the inbox, still leased.
    const current = second.next!;
    const wrong = await pullAndConfirm(ada, current, '00'.repeat(32));
    const refused = await ada.next({ ack: { deliveryId: current.deliveryId, confirmation: wrong.confirmation } });
    expect(refused).toMatchObject({ acked: { deliveryId: current.deliveryId, status: 'digest_mismatch' }, next: null });
    expect((await statusOf(current.deliveryId)).status).toBe('sent');
    // An ack naming one delivery with another's confirmation: 400, recorded on the named one.
    const mismatch = await ada.fetch('POST', '/api/inbox/next', { ack: { deliveryId: current.deliveryId, confirmation } });
    expect(mismatch.status).toBe(400);
    expect(await refusalsOf(current.deliveryId)).toContain('ack of another delivery');
    // The right one confirms it.
    const right = await pullAndConfirm(ada, current);
    expect((await ada.next({ ack: { deliveryId: current.deliveryId, confirmation: right.confirmation } })).acked?.status).toBe('accepted');
  });

  test("an ack of another recipient's delivery is 403, of an unknown one 404, each recorded; a bad body 400", async () => {
    await distribute(server, contentId, [blaise.recipientId]);
    expect(await blaiseStream.nth('waiting', 1)).toEqual({ count: 1 });
    const leased = (await blaise.next()).next!;
    const { confirmation } = await pullAndConfirm(blaise, leased);
    const foreign = await ada.fetch('POST', '/api/inbox/next', { ack: { deliveryId: leased.deliveryId, confirmation } });
    expect(foreign.status).toBe(403);
    expect(await refusalsOf(leased.deliveryId)).toEqual(['another recipient']);
    const unknownId = '0b1e7c2a-5d7e-4a3b-9c1d-2e3f4a5b6c7d';
    const unknown = await ada.fetch('POST', '/api/inbox/next', { ack: { deliveryId: unknownId, confirmation } });
    expect(unknown.status).toBe(404);
    expect(await refusalsOf(null, unknownId)).toEqual(['not in inbox']);
    for (const body of [{ leaseSeconds: 5 }, { leaseSeconds: 3601 }, { ack: { deliveryId: 'x', confirmation } }, { other: 1 }]) {
      expect((await ada.fetch('POST', '/api/inbox/next', body)).status).toBe(400);
    }
    // Not confirmed by Ada's attempt: Blaise's own ack still confirms it.
    expect((await blaise.next({ ack: { deliveryId: leased.deliveryId, confirmation } })).acked?.status).toBe('accepted');
  });

  test('concurrent next calls never lease the same delivery', async () => {
    for (let i = 0; i < 3; i++) await distribute(server, contentId, [ada.recipientId]);
    const answers = await Promise.all(Array.from({ length: 6 }, () => ada.next()));
    const leased = answers.flatMap(({ next }) => (next ? [next.deliveryId] : []));
    expect(leased).toHaveLength(3);
    expect(new Set(leased).size).toBe(3);
    const rows = await db.query(`SELECT delivery_id FROM inbox_leases WHERE delivery_id = ANY($1::uuid[])`, [leased]);
    expect(rows.rowCount).toBe(3);
  });

  test('a lease that expires returns the delivery to the inbox and notifies', async () => {
    const notices = blaiseStream.named('waiting').length;
    await distribute(server, contentId, [blaise.recipientId]);
    await blaiseStream.nth('waiting', notices + 1);
    const leased = (await blaise.next({ leaseSeconds: SHORT_LEASE_SECONDS })).next!;
    expect(Date.parse(leased.leaseExpiresAt) - Date.now()).toBeLessThanOrEqual(SHORT_LEASE_SECONDS * 1000);
    expect(await blaise.next()).toMatchObject({ next: null, waiting: 0 });
    // The sweep runs every second: the notice follows the expiry closely.
    expect(await blaiseStream.nth('waiting', notices + 2, (SHORT_LEASE_SECONDS + 5) * 1000)).toEqual({ count: 1 });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(leased.leaseExpiresAt));
    const again = await blaise.next();
    expect(again.next?.deliveryId).toBe(leased.deliveryId);
  }, 30_000);

  test('a second stream of the same installation closes the first with bye', async () => {
    const replacing = await ada.stream();
    expect(await adaStream.nth('bye', 1)).toEqual({ retryMs: TEST_RECONNECT_MS, reason: 'replaced' });
    await eventually(async () => adaStream.ended, Boolean, 3000);
    expect(adaStream.ended).toBe(true);
    // Ada's older deliveries are leased; the new stream says what waits on connect only when anything does.
    await eventually(
      async () => replacing.comments.length,
      (n) => n > 0,
      3000,
    );
    expect(replacing.ended).toBe(false);
    adaStream = replacing;
  });

  test('SIGTERM: every open stream gets bye before the server exits', async () => {
    // The database is dropped once the server exits: this client goes first.
    await db.end();
    const stopped = server.stop();
    expect(await adaStream.nth('bye', 1)).toEqual({ retryMs: TEST_RECONNECT_MS, reason: 'shutdown' });
    expect(await blaiseStream.nth('bye', 1)).toEqual({ retryMs: TEST_RECONNECT_MS, reason: 'shutdown' });
    await stopped;
  });
});

describe('inbox push on the embedded database (pglite)', () => {
  let server: RunningServer;

  afterAll(async () => {
    await server?.stop();
  });

  test('notice, next, pull, ack: confirmed, and nothing left', async () => {
    const setup = await setUp('pglite');
    server = setup.server;
    const agent = await enrol(server, setup.pin, 'Grace');
    const stream = await agent.stream();
    try {
      await distribute(server, setup.contentId, [agent.recipientId]);
      expect(await stream.nth('waiting', 1)).toEqual({ count: 1 });
      const leased = (await agent.next()).next!;
      const { confirmation } = await pullAndConfirm(agent, leased);
      expect(await agent.next({ ack: { deliveryId: leased.deliveryId, confirmation } })).toMatchObject({
        acked: { status: 'accepted' },
        next: null,
        waiting: 0,
      });
      expect((await json<{ items: unknown[] }>(await agent.fetch('GET', '/api/inbox'), 200)).items).toEqual([]);
    } finally {
      stream.close();
    }
  });
});
