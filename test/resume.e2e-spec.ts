import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dcx, newClientHome } from './support/cli-process.js';
import { RunningServer, startServer } from './support/server-process.js';

/**
 * A TCP proxy between `dcx` and the server's HTTP port. It records the head of every request and,
 * when armed, cuts the connection of the next bundle transfer once the response headers and
 * `cutAfterBody` bytes of its body have gone through.
 */
class CuttingProxy {
  readonly requests: string[] = [];
  cutAfterBody: number | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly tcp: Server,
    private readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<CuttingProxy> {
    const tcp = createServer();
    const proxy = new CuttingProxy(tcp, targetPort);
    tcp.on('connection', (client) => proxy.relay(client));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.tcp.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.tcp.close(resolve));
  }

  private relay(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    // The transfer being cut on this connection: its response headers are held back until complete,
    // then the headers and `limit` bytes of the body go through, and the connection breaks.
    let cut: { limit: number; held: Buffer; allowed: number | null; passed: number } | null = null;

    client.on('data', (chunk: Buffer) => {
      const end = chunk.indexOf('\r\n\r\n');
      const head = chunk.subarray(0, end === -1 ? chunk.length : end + 4).toString('latin1');
      if (/^[A-Z]+ \S+ HTTP\/1\.1\r\n/.test(head)) {
        this.requests.push(head);
        if (/^GET \/api\/(contents|deliveries)\/[^ ]+\/bundle/.test(head) && this.cutAfterBody !== null) {
          cut = { limit: this.cutAfterBody, held: Buffer.alloc(0), allowed: null, passed: 0 };
          this.cutAfterBody = null;
        }
      }
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());

    upstream.on('data', (chunk: Buffer) => {
      if (!cut) return void client.write(chunk);
      if (cut.allowed === null) {
        cut.held = Buffer.concat([cut.held, chunk]);
        const end = cut.held.indexOf('\r\n\r\n');
        if (end === -1) return;
        cut.allowed = end + 4 + cut.limit;
        chunk = cut.held;
      }
      if (cut.passed + chunk.length < cut.allowed) {
        cut.passed += chunk.length;
        return void client.write(chunk);
      }
      const rest = chunk.subarray(0, cut.allowed - cut.passed);
      cut = null;
      upstream.pause();
      // Broken a moment after the last byte, so that the client has read what it got.
      client.write(rest, () =>
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 20),
      );
    });
  }
}

/** A real server behind a proxy that cuts the first bundle transfer at a random byte; `dcx fetch` resumes it. */
describe('dcx fetch resumes a download cut off on the way (pglite)', () => {
  let server: RunningServer;
  let proxy: CuttingProxy;
  let work: string;
  const original = randomBytes(3 * 1024 * 1024 + 5);

  beforeAll(async () => {
    server = await startServer('pglite');
    proxy = await CuttingProxy.start(Number(new URL(server.url).port));
    work = await mkdtemp(join(tmpdir(), 'dcx-resume-e2e-'));
  });

  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  test('the first run exits 6 and keeps the part; the second resumes from it: same bytes, one delivery, confirmed once', async () => {
    await writeFile(join(work, 'clip.bin'), original);
    const published = await dcx(['publish', join(work, 'clip.bin'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    const { id: contentId, bundleUrl } = JSON.parse(published.stdout) as { id: string; bundleUrl: string };
    // The bundle URL names the server's PUBLIC_URL; dcx gets the proxy's. The delivery's
    // Content-Location is relative, so the resume goes through the proxy as well.
    const url = `${proxy.url}${new URL(bundleUrl).pathname}`;

    const home = await newClientHome();
    const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
    const cutAt = randomInt(1, original.length);
    proxy.cutAfterBody = cutAt;
    const first = await dcx(['fetch', url, '--out', out, '--json'], { DCX_HOME: home });
    expect([cutAt, first.code, first.stderr]).toEqual([
      cutAt,
      6,
      expect.stringMatching(/interrupted.*running the same command again resumes it/),
    ]);
    expect(await readdir(out)).toEqual([]);

    const key = createHash('sha256').update(url).digest('hex');
    const state = JSON.parse(await readFile(join(home, 'downloads', `${key}.json`), 'utf8')) as {
      deliveryId: string;
      deliveryUrl: string;
      entries: { offset: number; size: number }[];
    };
    expect(state.deliveryUrl).toBe(`${proxy.url}/api/deliveries/${state.deliveryId}/bundle`);
    // The server's bundle gives the content's size in its local header: once that header has arrived,
    // the content's bytes go to a file of their own (written once), the rest to the partial bundle.
    const kept = state.entries.length === 0 ? 0 : (await stat(join(home, 'downloads', `${key}.0.data`))).size;
    expect(state.entries).toEqual(state.entries.length === 0 ? [] : [{ offset: expect.any(Number), size: original.length }]);
    const partSize = (await stat(join(home, 'downloads', `${key}.part`))).size + kept;
    expect(partSize).toBeLessThanOrEqual(cutAt);

    const second = await dcx(['fetch', url, '--out', out, '--json'], { DCX_HOME: home });
    // Nothing on stderr but the pin made on this first confirmed fetch: no restart, no new delivery.
    expect([cutAt, second.code, second.stderr]).toEqual([cutAt, 0, expect.stringMatching(/^pinned server [^\n]*\n$/)]);
    const report = JSON.parse(second.stdout) as { deliveryId: string; status: string; files: { path: string }[] };
    expect(report).toMatchObject({ deliveryId: state.deliveryId, status: 'accepted', files: [{ path: join(out, 'clip.bin') }] });
    expect((await readFile(join(out, 'clip.bin'))).equals(original)).toBe(true);
    expect(await readdir(join(home, 'downloads'))).toEqual([]);

    // The resume asked the delivery's own URL, through the proxy, for the bytes after the part.
    const resumed = proxy.requests.filter((head) => head.startsWith(`GET /api/deliveries/${state.deliveryId}/bundle `));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatch(new RegExp(`\\r\\nrange: bytes=${partSize}-\\r\\n`, 'i'));
    expect(resumed[0]).toMatch(new RegExp(`\\r\\nif-range: "${state.deliveryId}"\\r\\n`, 'i'));

    const delivery = (await (await server.admin(`/api/deliveries/${state.deliveryId}`)).json()) as {
      status: string;
      events: { type: string }[];
    };
    expect(delivery.status).toBe('confirmed');
    expect(delivery.events.filter((e) => e.type === 'confirmed')).toHaveLength(1);
    const deliveries = (await (await server.admin(`/api/deliveries?contentId=${contentId}&pageSize=100`)).json()) as {
      items: { id: string }[];
    };
    expect(deliveries.items.map((d) => d.id)).toEqual([state.deliveryId]);
  });
});
