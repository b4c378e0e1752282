// `dcx fetch` resuming a cut-off download: the real CLI (dist/, built by `npm run build`) as a
// process against a node:http server that serves fixed bundle bytes with Range / If-Range and cuts
// or stalls transfers on demand.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo, createServer as createTcpServer, connect, Server as TcpServer, Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { CLIENT_KEY_HEADER } from '../../protocol/constants.js';
import { generateServerKeySet } from '../../protocol/keys.js';
import { downloadKey } from './state.js';
import { until } from '../../../test/support/eventually.js';
import { ExitCode } from '../exit-codes.js';
import { makeBundleForRequest } from '../testing/bundles.js';
import { ConfirmEndpoint } from '../testing/confirm-endpoint.js';
import { removeTempDirs, sha256, tempDir } from '../testing/temp-dirs.js';

const MAIN = resolve(import.meta.dirname, '../../../dist/src/client/main.js');

const keys = generateServerKeySet();
const content = randomBytes(700_000);
let endpoint: ConfirmEndpoint;
let gate: ConfirmGate;
let http: Server;
let base: string;

interface Issued {
  id: string;
  zip: Buffer;
}

interface Seen {
  path: string;
  status: number;
  headers: IncomingMessage['headers'];
}

/** What the server does with the next transfers; reset before every test. */
const server = {
  deliveries: new Map<string, Issued>(),
  seen: [] as Seen[],
  /** Byte counts after which the next bundle transfers are cut (res.destroy()), one per transfer; negative: before the end. */
  cuts: [] as (number | ((body: Buffer) => number))[],
  /** Send this many bytes of the next transfer, then nothing more until the test ends. */
  stallAfter: null as number | null,
  stalled: [] as ServerResponse[],
  /** Ignore Range: answer 200 with the whole bundle. */
  ignoreRange: false,
  /** Answer ranges with a Content-Range of another total. */
  wrongTotal: false,
  /** No Content-Location / ETag: a server that offers no resuming. */
  plain: false,
  /** The delivery URL answers 403 without this access token. */
  token: null as string | null,
  /** How bundles are laid out: 'archiver' (data descriptors: kept whole) or 'server' (content kept apart). */
  shape: 'archiver' as 'archiver' | 'server',
  /** Replaces the content entry's bytes (same length) in the bundles issued. */
  forged: null as Buffer | null,
  reset(): void {
    this.deliveries.clear();
    this.seen = [];
    this.cuts = [];
    this.stallAfter = null;
    this.ignoreRange = false;
    this.wrongTotal = false;
    this.plain = false;
    this.token = null;
    this.forged = null;
  },
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = req.url!;
  const record = (status: number) => server.seen.push({ path, status, headers: req.headers });
  if (path === '/api/contents/c1/bundle') {
    const { zip, data } = await makeBundleForRequest(req.headers, {
      keys,
      confirmPort: gate.port,
      files: [{ name: 'movie.mp4', bytes: content }],
      entries: server.forged ? [{ name: 'movie.mp4', data: server.forged }] : undefined,
      shape: server.shape,
    });
    endpoint.expect(data);
    const issued = { id: data.deliveryId, zip };
    server.deliveries.set(issued.id, issued);
    return send(issued, req, res, false, record);
  }
  const match = /^\/api\/deliveries\/([0-9a-f-]{36})\/bundle$/.exec(path);
  const issued = match ? server.deliveries.get(match[1]) : undefined;
  if (!issued) {
    record(404);
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 404, message: 'no such delivery' }));
    return;
  }
  if (server.token !== null && req.headers['dcx-access-token'] !== server.token) {
    record(403);
    res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ statusCode: 403, message: 'wrong access token' }));
    return;
  }
  return send(issued, req, res, true, record);
}

function send(issued: Issued, req: IncomingMessage, res: ServerResponse, ranges: boolean, record: (status: number) => void): void {
  const size = issued.zip.length;
  const etag = `"${issued.id}"`;
  res.setHeader('content-type', 'application/vnd.dcx.bundle+zip');
  res.setHeader('dcx-delivery-id', issued.id);
  if (!server.plain) {
    res.setHeader('content-location', `/api/deliveries/${issued.id}/bundle`);
    res.setHeader('etag', etag);
    res.setHeader('accept-ranges', 'bytes');
  }
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
  const ifRange = req.headers['if-range'];
  if (ranges && range && !server.ignoreRange && (ifRange === undefined || ifRange === etag)) {
    start = Number(range[1]);
    if (start >= size) {
      record(416);
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    res.statusCode = 206;
    res.setHeader('content-range', `bytes ${start}-${size - 1}/${server.wrongTotal ? size + 1 : size}`);
  }
  record(res.statusCode);
  const body = issued.zip.subarray(start);
  res.setHeader('content-length', body.length);
  const shifted = server.cuts.shift();
  const chosen = typeof shifted === 'function' ? shifted(body) : shifted;
  const cut = chosen !== undefined && chosen < 0 ? body.length + chosen : chosen;
  if (cut !== undefined && cut < body.length) {
    // A moment for the bytes to be read: fetch drops what it has not handed out yet when the connection breaks.
    res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 50));
  } else if (server.stallAfter !== null) {
    const stall = server.stallAfter;
    server.stallAfter = null;
    server.stalled.push(res);
    res.write(body.subarray(0, stall));
  } else {
    res.end(body);
  }
}

/**
 * The confirmation port named in the bundles: forwards to the confirm endpoint, or hangs up on
 * every connection while `closed` (the client then exits 6 after saving).
 */
class ConfirmGate {
  closed = false;
  private readonly sockets = new Set<Socket>();
  constructor(private readonly tcp: TcpServer) {}

  static async start(target: () => number): Promise<ConfirmGate> {
    const tcp = createTcpServer();
    const gate = new ConfirmGate(tcp);
    tcp.on('connection', (socket) => {
      if (gate.closed) return void socket.destroy();
      const upstream = connect(target(), '127.0.0.1');
      for (const s of [socket, upstream]) {
        gate.sockets.add(s);
        s.on('close', () => gate.sockets.delete(s));
        s.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
    });
    await new Promise<void>((done) => tcp.listen(0, '127.0.0.1', done));
    return gate;
  }

  get port(): number {
    return (this.tcp.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((done) => this.tcp.close(done));
  }
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
  endpoint = await ConfirmEndpoint.start(keys);
  gate = await ConfirmGate.start(() => endpoint.port);
  http = createHttpServer((req, res) => void handle(req, res));
  await new Promise<void>((done) => http.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of server.stalled) res.destroy();
  http.closeAllConnections();
  await new Promise((done) => http.close(done));
  await gate.stop();
  await endpoint.stop();
  await removeTempDirs();
});

beforeEach(() => {
  server.reset();
  gate.closed = false;
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], home: string): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, DCX_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<Run>((resolveRun, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, stdout, stderr }));
  });
  return { child, done };
}

const dcx = (args: string[], home: string) => start(args, home).done;

interface Client {
  home: string;
  out: string;
  url: string;
  part: string;
  state: string;
  fetch: (...extra: string[]) => Promise<Run>;
}

async function client(url = `${base}/api/contents/c1/bundle`): Promise<Client> {
  const dir = await tempDir('dcx-resume-');
  const home = join(dir, 'home');
  const out = join(dir, 'out');
  const key = downloadKey(url);
  return {
    home,
    out,
    url,
    part: join(home, 'downloads', `${key}.part`),
    state: join(home, 'downloads', `${key}.json`),
    fetch: (...extra) => dcx(['fetch', url, '--out', out, '--json', ...extra], home),
  };
}

const listing = (dir: string) =>
  readdir(dir).then(
    (names) => names.sort(),
    () => [] as string[],
  );
const bundleRequests = () => server.seen.filter((s) => s.path === '/api/contents/c1/bundle');
const deliveryRequests = () => server.seen.filter((s) => s.path.startsWith('/api/deliveries/'));
const onlyDelivery = () => [...server.deliveries.values()][0];

/**
 * The bytes downloaded so far, as the saved state lays them out: the partial bundle with the data of
 * the entries kept apart (`<key>.<n>.data`) put back in their places.
 */
async function downloadedBytes(c: Client): Promise<Buffer> {
  const part = await readFile(c.part);
  const state = JSON.parse(await readFile(c.state, 'utf8')) as { entries?: { offset: number; size: number }[] };
  const pieces: Buffer[] = [];
  let at = 0;
  let partAt = 0;
  for (const [n, entry] of (state.entries ?? []).entries()) {
    pieces.push(part.subarray(partAt, partAt + entry.offset - at));
    partAt += entry.offset - at;
    const data = await readFile(c.part.replace(/\.part$/, `.${n}.data`)).catch(() => Buffer.alloc(0));
    pieces.push(data);
    at = entry.offset + data.length;
  }
  pieces.push(part.subarray(partAt));
  return Buffer.concat(pieces);
}

/** The files of the partial download: its state, the partial bundle, and the content kept apart ('server' bundles past its header). */
async function expectPartialFiles(c: Client): Promise<void> {
  const key = downloadKey(c.url);
  const state = JSON.parse(await readFile(c.state, 'utf8')) as { entries?: unknown[] };
  expect(state.entries).toHaveLength(server.shape === 'server' ? 1 : 0);
  const data = server.shape === 'server' ? [`${key}.0.data`] : [];
  expect(await listing(join(c.home, 'downloads'))).toEqual([...data, `${key}.json`, `${key}.part`]);
}

/** The partial download must be exactly the first bytes of the bundle. */
async function expectPrefix(c: Client, zip: Buffer): Promise<number> {
  const part = await downloadedBytes(c);
  expect(part.length).toBeGreaterThan(0);
  expect(part.length).toBeLessThan(zip.length);
  expect(part.equals(zip.subarray(0, part.length))).toBe(true);
  return part.length;
}

async function expectDelivered(c: Client, run: Run, deliveryId: string, name = 'movie.mp4'): Promise<void> {
  expect(run.stderr).not.toMatch(/^dcx:/m);
  expect(run.code).toBe(ExitCode.Confirmed);
  const report = JSON.parse(run.stdout) as { deliveryId: string; status: string; files: { path: string; sha256: string }[] };
  expect(report).toMatchObject({ deliveryId, status: 'accepted', files: [{ path: join(c.out, name), sha256: sha256(content) }] });
  expect((await readFile(join(c.out, name))).equals(content)).toBe(true);
  expect(endpoint.received.filter((r) => r.confirmation.deliveryId === deliveryId)).toHaveLength(1);
  expect(await listing(join(c.home, 'downloads'))).toEqual([]);
}

describe.each(['archiver', 'server'] as const)('dcx fetch resumes a cut-off download (%s-shaped bundles)', (shape) => {
  beforeEach(() => {
    server.shape = shape;
  });

  test(
    'a cut exits 6 and keeps part + state; each next run asks for the rest from the part size; the same delivery is ' + 'confirmed once',
    async () => {
      const c = await client();
      server.cuts = [150_000];
      const first = await c.fetch('--access-token', 'tok-7');
      expect(first.code).toBe(ExitCode.ServerUnreachable);
      expect(first.stderr).toMatch(
        new RegExp(
          String.raw`^dcx: the download from http:\/\/127\.0\.0\.1:\d+ was interrupted at \d+ of \d+ bytes: .*; ` +
            String.raw`the partial download is kept: running the same command again resumes it\n$`,
        ),
      );
      const { id, zip } = onlyDelivery();
      await expectPartialFiles(c);
      expect(JSON.parse(await readFile(c.state, 'utf8'))).toEqual({
        version: 1,
        url: c.url,
        deliveryUrl: `${base}/api/deliveries/${id}/bundle`,
        etag: `"${id}"`,
        total: zip.length,
        deliveryId: id,
        entries: shape === 'server' ? [{ offset: zip.indexOf(content.subarray(0, 64)), size: content.length }] : [],
      });
      expect((await stat(c.part)).mode & 0o777).toBe(0o600);
      const firstSize = await expectPrefix(c, zip);
      expect(await listing(c.out)).toEqual([]);

      // Cut again while resuming: the part grows by exactly what arrived, still a prefix.
      server.cuts = [200_000];
      const second = await c.fetch('--access-token', 'tok-7');
      expect(second.code).toBe(ExitCode.ServerUnreachable);
      const secondSize = await expectPrefix(c, zip);
      expect(secondSize).toBeGreaterThan(firstSize);

      const third = await c.fetch('--access-token', 'tok-7');
      await expectDelivered(c, third, id);

      // One delivery issued; every resume asked its own URL for the bytes after the part, with the same credentials.
      expect(bundleRequests()).toHaveLength(1);
      const identityKey = bundleRequests()[0].headers[CLIENT_KEY_HEADER];
      expect(deliveryRequests().map((r) => [r.status, r.headers.range, r.headers['if-range']])).toEqual([
        [206, `bytes=${firstSize}-`, `"${id}"`],
        [206, `bytes=${secondSize}-`, `"${id}"`],
      ]);
      for (const r of [...bundleRequests(), ...deliveryRequests()]) {
        expect(r.headers[CLIENT_KEY_HEADER]).toBe(identityKey);
        expect(r.headers['dcx-access-token']).toBe('tok-7');
        expect(r.headers['accept-encoding']).toBe('identity');
      }

      // Done and confirmed: the next fetch is a new delivery.
      const again = await c.fetch('--access-token', 'tok-7');
      expect(again.code).toBe(0);
      expect(bundleRequests()).toHaveLength(2);
      expect((JSON.parse(again.stdout) as { deliveryId: string }).deliveryId).not.toBe(id);
    },
  );

  test('a 200 instead of a 206 starts the same delivery over from byte 0', async () => {
    const c = await client();
    server.cuts = [300_000];
    expect((await c.fetch()).code).toBe(ExitCode.ServerUnreachable);
    const { id, zip } = onlyDelivery();
    const size = await expectPrefix(c, zip);

    server.ignoreRange = true;
    const second = await c.fetch();
    expect(second.stderr).toContain(`the server sent the whole bundle of delivery ${id} again; downloading it from the start`);
    await expectDelivered(c, second, id);
    expect(bundleRequests()).toHaveLength(1);
    expect(deliveryRequests().map((r) => [r.status, r.headers.range])).toEqual([[200, `bytes=${size}-`]]);
  });

  test('a 404 on the delivery URL discards the part and starts a new delivery from the original URL', async () => {
    const c = await client();
    server.cuts = [100_000];
    expect((await c.fetch()).code).toBe(ExitCode.ServerUnreachable);
    const { id } = onlyDelivery();
    server.deliveries.clear();

    const second = await c.fetch();
    expect(second.stderr).toContain(
      `cannot resume the download of delivery ${id} (404 Not Found); starting over with a new download from ${c.url}`,
    );
    const fresh = onlyDelivery();
    expect(fresh.id).not.toBe(id);
    await expectDelivered(c, second, fresh.id);
    expect(bundleRequests()).toHaveLength(2);
    expect(deliveryRequests().map((r) => r.status)).toEqual([404]);
  });

  test('a 403 on the delivery URL (no access token this time) keeps the part; with the token the next run resumes', async () => {
    const c = await client();
    server.token = 'tok-1';
    server.cuts = [100_000];
    expect((await c.fetch('--access-token', 'tok-1')).code).toBe(ExitCode.ServerUnreachable);
    const { id, zip } = onlyDelivery();
    const size = await expectPrefix(c, zip);

    const refused = await c.fetch();
    expect(refused.code).toBe(ExitCode.Failure);
    expect(refused.stderr).toMatch(
      new RegExp(
        String.raw`^dcx: resuming the download from .* failed: 403 Forbidden \(wrong access token\); ` +
          String.raw`the partial download is kept: running the same command again resumes it\n$`,
      ),
    );
    expect((await downloadedBytes(c)).length).toBe(size);

    await expectDelivered(c, await c.fetch('--access-token', 'tok-1'), id);
    expect(deliveryRequests().map((r) => [r.status, r.headers.range])).toEqual([
      [403, `bytes=${size}-`],
      [206, `bytes=${size}-`],
    ]);
  });

  test('a 206 for another total is not appended: a new delivery instead', async () => {
    const c = await client();
    server.cuts = [100_000];
    expect((await c.fetch()).code).toBe(ExitCode.ServerUnreachable);
    const { id } = onlyDelivery();
    server.wrongTotal = true;
    const second = await c.fetch();
    expect(second.stderr).toMatch(
      new RegExp(
        `cannot resume the download of delivery ${id} \\(asked for bytes \\d+- of \\d+, the server sent Content-Range bytes ` +
          `\\d+-\\d+/\\d+\\)`,
      ),
    );
    server.wrongTotal = false;
    const fresh = [...server.deliveries.values()].find((d) => d.id !== id)!;
    await expectDelivered(c, second, fresh.id);
  });

  test('a complete download whose confirmation could not be sent (exit 6): saved once, kept in the outbox; `dcx retry` confirms it', async () => {
    const c = await client();
    gate.closed = true;
    const first = await c.fetch();
    expect(first.code).toBe(ExitCode.ServerUnreachable);
    expect(first.stderr).toMatch(/confirmation server .*; the confirmation is kept in the outbox; `dcx retry` sends it/);
    const { id } = onlyDelivery();
    // The download is done with: saved and verified, only its confirmation waits.
    expect(await listing(join(c.home, 'downloads'))).toEqual([]);
    expect((await readFile(join(c.out, 'movie.mp4'))).equals(content)).toBe(true);

    gate.closed = false;
    const retry = await start(['retry', '--all', '--json'], c.home).done;
    expect(retry.stderr).not.toMatch(/^dcx:/m);
    expect(retry.code).toBe(ExitCode.Confirmed);
    expect(JSON.parse(retry.stdout)).toMatchObject({ confirmed: 1, items: [{ deliveryId: id, status: 'accepted' }] });
    expect(endpoint.received.filter((r) => r.confirmation.deliveryId === id)).toHaveLength(1);
    expect(await listing(join(c.home, 'outbox'))).toEqual([]);
    expect(await listing(c.out)).toEqual(['movie.mp4']);
    expect(bundleRequests()).toHaveLength(1);
  });

  test('Ctrl-C keeps part and state and says so; a second fetch of the URL meanwhile is refused; the next run resumes', async () => {
    const c = await client();
    server.stallAfter = 250_000;
    const running = start(['fetch', c.url, '--out', c.out, '--json'], c.home);
    await until('the first 250000 bytes', async () => (await downloadedBytes(c).catch(() => null))?.length === 250_000);

    const concurrent = await c.fetch();
    expect(concurrent.code).toBe(ExitCode.Failure);
    expect(concurrent.stderr).toMatch(new RegExp(`^dcx: another dcx fetch of ${c.url} is running \\(pid ${running.child.pid}\\)`));

    running.child.kill('SIGINT');
    const interrupted = await running.done;
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toBe('\ndcx: interrupted; the partial download is kept: running the same command again resumes it\n');
    await expectPartialFiles(c);

    const { id } = onlyDelivery();
    const resumed = await c.fetch();
    await expectDelivered(c, resumed, id);
    expect(deliveryRequests().map((r) => [r.status, r.headers.range])).toEqual([[206, 'bytes=250000-']]);
  });

  // In the plug-in data's header, in the plug-in data, in the content's header, at the content's
  // first byte, in its last bytes, in the central directory, at the end-of-central-directory record.
  test.each([5, 100, 'content header', 'content start', -200, -100, -10])('cut at %s: resumed, saved and confirmed once', async (at) => {
    const c = await client();
    const contentStart = (zip: Buffer) => zip.indexOf(content.subarray(0, 64));
    server.cuts = [at === 'content header' ? (zip) => contentStart(zip) - 20 : at === 'content start' ? contentStart : (at as number)];
    expect((await c.fetch()).code).toBe(ExitCode.ServerUnreachable);
    const { id, zip: issued } = onlyDelivery();
    const size = await expectPrefix(c, issued);
    await expectDelivered(c, await c.fetch(), id);
    expect(deliveryRequests().map((r) => [r.status, r.headers.range])).toEqual([[206, `bytes=${size}-`]]);
  });

  test('a forged content (same size, other bytes): exit 4, nothing saved, nothing confirmed, the download discarded', async () => {
    const c = await client();
    const forged = Buffer.from(content);
    forged[content.length - 1] ^= 0xff;
    server.forged = forged;
    const before = endpoint.received.length;
    const run = await c.fetch();
    expect(run.code).toBe(ExitCode.DigestMismatch);
    expect(run.stderr).toMatch(
      new RegExp(
        String.raw`^dcx: "movie\.mp4" is not what the server sent \(SHA-256 [0-9a-f]{64} differs from the plug-in data's [0-9a-f]{64}\); ` +
          String.raw`the file was removed\n$`,
      ),
    );
    expect(await listing(c.out)).toEqual([]);
    expect(await listing(join(c.home, 'downloads'))).toEqual([]);
    expect(endpoint.received.length).toBe(before);
  });

  test('--out on another file system than DCX_HOME (/dev/shm): saved by copy, no temp file left', async () => {
    const c = await client();
    const out = await mkdtemp('/dev/shm/dcx-out-').catch(() => null);
    if (!out) return;
    try {
      const run = await dcx(['fetch', c.url, '--out', out, '--json'], c.home);
      await expectDelivered({ ...c, out }, run, onlyDelivery().id);
      expect(await listing(out)).toEqual(['movie.mp4']);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  test('a lock left by a process that is gone is taken over', async () => {
    const c = await client();
    server.cuts = [100_000];
    expect((await c.fetch()).code).toBe(ExitCode.ServerUnreachable);
    await writeFile(c.part.replace(/\.part$/, '.lock'), '999999999\n');
    const { id } = onlyDelivery();
    await expectDelivered(c, await c.fetch(), id);
  });

  test('a server that offers no resuming: a cut-off download leaves nothing behind, as before', async () => {
    const c = await client();
    server.plain = true;
    server.cuts = [100_000];
    const first = await c.fetch();
    expect(first.code).toBe(ExitCode.ServerUnreachable);
    expect(first.stderr).toMatch(/^dcx: the download from .* was interrupted at \d+ of \d+ bytes: [^;]*\n$/);
    expect(await listing(join(c.home, 'downloads'))).toEqual([]);
    const second = await c.fetch();
    await expectDelivered(c, second, [...server.deliveries.keys()][1]);
  });
});
