import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { REQUEST_AUTH_HEADER } from '../../protocol/constants.js';
import { ExitCode } from '../exit-codes.js';
import { testSigner } from '../testing/signer.js';
import { EVENTS_PATH, holdEventStream, StreamEvent } from './event-stream.js';

let server: Server;
let origin: string;
let handle: (req: IncomingMessage, res: ServerResponse) => void;
const auths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    auths.push(String(req.headers[REQUEST_AUTH_HEADER.toLowerCase()] ?? ''));
    handle(req, res);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

const signer = () => testSigner(origin);

const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();

async function hold(idleTimeoutMs?: number) {
  const events: StreamEvent[] = [];
  let opened = 0;
  const end = await holdEventStream(signer(), origin, {
    signal: new AbortController().signal,
    onOpen: () => opened++,
    onEvent: (e) => events.push(e),
    idleTimeoutMs,
  });
  return { end, events, opened };
}

describe('holdEventStream', () => {
  test('retry, waiting (split across chunks), heartbeats, an unknown event; a server close ends it', async () => {
    handle = (req, res) => {
      expect(req.url).toBe(EVENTS_PATH);
      expect(req.headers.accept).toBe('text/event-stream');
      sse(res);
      res.write('retry: 1500\n\nevent: waiting\ndata: {"cou');
      setTimeout(() => {
        res.write('nt": 3}\n\n: hb 2026-12-03T00:00:00Z\n\nevent: other\ndata: x\n\n');
        res.end();
      }, 20);
    };
    const { end, events, opened } = await hold();
    expect(end).toEqual({ reason: 'closed' });
    expect(opened).toBe(1);
    expect(events).toEqual([{ kind: 'retry', ms: 1500 }, { kind: 'waiting', count: 3 }, { kind: 'heartbeat' }]);
    expect(auths.at(-1)).not.toBe('');
  });

  test('bye ends the stream at once with its retryMs, even if the server keeps it open', async () => {
    handle = (_req, res) => {
      sse(res);
      res.write('event: bye\ndata: {"retryMs": 2500, "reason": "shutdown"}\n\n');
    };
    const { end, events } = await hold();
    expect(end).toEqual({ reason: 'bye', retryMs: 2500, why: 'shutdown' });
    expect(events).toEqual([{ kind: 'bye', retryMs: 2500, reason: 'shutdown' }]);
  });

  test('a fresh signature per connection', async () => {
    handle = (_req, res) => {
      sse(res);
      res.end();
    };
    await hold();
    await hold();
    expect(auths.at(-1)).not.toBe(auths.at(-2));
  });

  test('401 is exit 8 (reconnecting would not help); 503 is exit 6; a JSON answer is no stream', async () => {
    handle = (_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"not enrolled"}');
    await expect(hold()).rejects.toMatchObject({ exitCode: ExitCode.Refused });
    handle = (_req, res) => res.writeHead(503).end();
    await expect(hold()).rejects.toMatchObject({ exitCode: ExitCode.ServerUnreachable });
    handle = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    await expect(hold()).rejects.toMatchObject({ exitCode: ExitCode.Failure, message: expect.stringMatching(/not an event stream/) });
  });

  test('a stream that goes quiet (no heartbeat) is taken for lost: exit 6', async () => {
    handle = (_req, res) => {
      sse(res);
      res.write('retry: 100\n\n');
    };
    await expect(hold(200)).rejects.toMatchObject({ exitCode: ExitCode.ServerUnreachable, message: expect.stringMatching(/went quiet/) });
  });

  test('abort ends it quietly', async () => {
    handle = (_req, res) => sse(res);
    const stop = new AbortController();
    const held = holdEventStream(signer(), origin, { signal: stop.signal, onOpen: () => stop.abort(), onEvent: () => undefined });
    await expect(held).resolves.toEqual({ reason: 'aborted' });
  });
});
