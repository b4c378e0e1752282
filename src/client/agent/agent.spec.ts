// The agent's loop against a scripted server (events + next) and fake parts: what it acks, what it logs,
// how it goes on after a refusal and stops on a refusal of the installation.
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { AnswerStatus, encodeAnswer } from '../../protocol/answer.js';
import { ConfirmOutcome, ConfirmRequest } from '../confirm-client.js';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { DcxHome } from '../home.js';
import { testSigner } from '../testing/signer.js';
import { removeTempDirs, tempDir } from '../testing/temp-dirs.js';
import { Agent, AgentDeps } from './agent.js';
import { AgentStateFile } from './state.js';

afterAll(removeTempDirs);

type NextBody = { ack?: { deliveryId: string; confirmation: string }; leaseSeconds?: number };
let server: Server;
let origin: string;
let answerNext: (body: NextBody) => { status: number; json: unknown };
const nextCalls: NextBody[] = [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/api/inbox/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 100\n\nevent: waiting\ndata: {"count": 1}\n\n');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as NextBody;
      nextCalls.push(body);
      const { status, json } = answerNext(body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});
beforeEach(() => (nextCalls.length = 0));

const item = (name: string) => ({ deliveryId: randomUUID(), name, size: 1, bundleUrl: `/api/inbox/${name}/bundle`, leaseExpiresAt: 'x' });
const acked = (deliveryId: string, status = AnswerStatus.Accepted) => ({
  deliveryId,
  status: 'accepted',
  answer: encodeAnswer({ status, deliveryId, message: '', receipt: Buffer.from('r') }).toString('base64'),
});

/**
 * A server inbox of `items`: each next leases the first one neither leased nor confirmed; an ack confirms
 * (or, for `refused`, answers digest mismatch and the delivery stays leased).
 */
function inbox(items: ReturnType<typeof item>[], refused?: string): (body: NextBody) => { status: number; json: unknown } {
  const done = new Set<string>();
  return (body) => {
    let answer: ReturnType<typeof acked> | null = null;
    if (body.ack) {
      const ok = body.ack.deliveryId !== refused;
      done.add(body.ack.deliveryId);
      answer = acked(body.ack.deliveryId, ok ? AnswerStatus.Accepted : AnswerStatus.DigestMismatch);
    }
    const next = items.find((i) => !done.has(i.deliveryId) && !leased.has(i.deliveryId)) ?? null;
    if (next) leased.add(next.deliveryId);
    return { status: 200, json: { acked: answer, next, waiting: 0 } };
  };
}
const leased = new Set<string>();

async function scene(pullOf: (name: string, confirmWith: (r: ConfirmRequest) => Promise<ConfirmOutcome>) => Promise<unknown>) {
  const home = new DcxHome(await tempDir());
  const signer = testSigner(origin);
  const deps: AgentDeps = {
    home,
    signer,
    outbox: { list: async () => [], flush: async () => Promise.reject(new Error('nothing kept')) },
    confirmationFrame: (request) => Buffer.from(`frame of ${request.deliveryId}`),
    checkAnswer: (answer, request) => {
      if (answer.status !== AnswerStatus.Accepted)
        throw new DcxError(ExitCode.ConfirmationRefused, 'the server refused the confirmation: digest_mismatch');
      return {
        status: 'accepted',
        message: '',
        receipt: Buffer.from(request.deliveryId),
        receiptFields: {} as ConfirmOutcome['receiptFields'],
      };
    },
    pull: async (url, confirmWith) => pullOf(url.pathname.split('/')[3], confirmWith) as never,
    isKept: () => false,
  };
  const log: string[] = [];
  const agent = new Agent(deps, { origin, out: '/out', leaseSeconds: 30, log: (l) => log.push(l), notice: () => undefined, env: {} });
  return { agent, log, home };
}

const requestFor = (deliveryId: string) => ({ deliveryId, digests: ['d'] }) as unknown as ConfirmRequest;
const result = (deliveryId: string, name: string) => ({
  deliveryId,
  status: 'accepted',
  files: [{ path: `/out/${name}`, size: 1, sha256: 'd' }],
  receipt: Buffer.alloc(0),
  receiptPath: '',
  message: '',
});

/** An agent run until it logged two deliveries, a.pdf and b.pdf (the ack of a.pdf refused when `refuseFirst`), then stopped. */
async function twoDeliveries(refuseFirst: boolean) {
  const a = item('a.pdf');
  const b = item('b.pdf');
  const ids: Record<string, string> = { 'a.pdf': a.deliveryId, 'b.pdf': b.deliveryId };
  answerNext = inbox([a, b], refuseFirst ? a.deliveryId : undefined);
  const { agent, log, home } = await scene(async (name, confirmWith) => {
    await confirmWith(requestFor(ids[name]));
    return result(ids[name], name);
  });
  const running = agent.run();
  while (log.length < 2) await new Promise((r) => setTimeout(r, 20));
  agent.stop();
  await running;
  return { a, b, log, home };
}

describe('Agent', () => {
  test('each delivery is acked by the call that leases the next; one log line each; agent.json records the stop', async () => {
    const { a, b, log, home } = await twoDeliveries(false);
    expect(log).toEqual([
      expect.stringMatching(new RegExp(`Z confirmed a\\.pdf: /out/a\\.pdf \\(delivery ${a.deliveryId}\\)$`)),
      expect.stringMatching(new RegExp(`Z confirmed b\\.pdf: /out/b\\.pdf \\(delivery ${b.deliveryId}\\)$`)),
    ]);
    const acks = nextCalls.filter((c) => c.ack).map((c) => [c.ack!.deliveryId, Buffer.from(c.ack!.confirmation, 'base64').toString()]);
    expect(acks.slice(0, 2)).toEqual([
      [a.deliveryId, `frame of ${a.deliveryId}`],
      [b.deliveryId, `frame of ${b.deliveryId}`],
    ]);
    expect(nextCalls.every((c) => c.leaseSeconds === 30)).toBe(true);
    expect(await new AgentStateFile(home).read()).toMatchObject({
      connected: false,
      stoppedAt: expect.any(String),
      lastDelivery: { name: 'b.pdf' },
    });
  });

  test('a refused ack is one FAILED line; the lease that came with it is delivered next', async () => {
    const { a, log } = await twoDeliveries(true);
    expect(log[0]).toMatch(
      new RegExp(`FAILED a\\.pdf \\(delivery ${a.deliveryId}\\): the server refused the confirmation: digest_mismatch$`),
    );
    expect(log[1]).toMatch(/ confirmed b\.pdf/);
  });

  test('a refusal of the installation (401) stops the agent with exit 8', async () => {
    answerNext = () => ({ status: 401, json: { message: 'installation not enrolled' } });
    const { agent } = await scene(async () => undefined);
    await expect(agent.run()).rejects.toMatchObject({ exitCode: ExitCode.Refused, message: expect.stringMatching(/401/) });
  });
});
