import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnswerStatus, decodeAnswer } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { ANSWER_MEDIA_TYPE, CONFIRMATION_MEDIA_TYPE } from '../src/protocol/constants.js';
import { newDeliveryId } from '../src/protocol/delivery-id.js';
import { FrameParser } from '../src/protocol/frame.js';
import { dcx, newClientHome, publish } from './support/cli-process.js';
import { startProxy } from './support/proxy-process.js';
import { RunningServer, startServer } from './support/server-process.js';
import { exchange } from './support/tcp.js';

/**
 * The confirmation port is closed for clients: the listener binds 127.0.0.1 while the plug-in data names
 * 127.0.0.2 (PUBLIC_HOST), where nothing listens; the web port answers on every address, so the server URL
 * in the bundle (http://127.0.0.2:<port>) is reachable and downloads go to 127.0.0.1.
 */
const BLOCKED_PORT_ENV = { PUBLIC_HOST: '127.0.0.2', CONFIRM_BIND_HOST: '127.0.0.1' };

async function deliveryOf(server: RunningServer, id: string) {
  const response = await server.admin(`/api/deliveries/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; events: { type: string; reason: string | null }[] };
}

async function outboxOf(home: string): Promise<string[]> {
  return readdir(join(home, 'outbox')).catch(() => []);
}

function unknownFrame(): Buffer {
  return encodeConfirmation(
    { deliveryId: newDeliveryId(), clientFingerprint: randomBytes(32).toString('hex'), digests: [randomBytes(32).toString('hex')] },
    randomBytes(32),
  );
}

describe('confirmation over HTTPS, through proxies, with the TCP port blocked', () => {
  let server: RunningServer;
  let work: string;
  let bundleUrl: string;

  beforeAll(async () => {
    server = await startServer('pglite', BLOCKED_PORT_ENV);
    work = await mkdtemp(join(tmpdir(), 'dcx-https-'));
    await writeFile(join(work, 'report.pdf'), randomBytes(200_000));
    const content = await publish(server, join(work, 'report.pdf'), 'public');
    bundleUrl = `${server.url}/api/contents/${content.id}/bundle`;
  });

  afterAll(async () => {
    await server?.stop();
  });

  const fetchInto = async (home: string, extra: string[] = [], env: Record<string, string> = {}) =>
    dcx(['fetch', bundleUrl, '--out', join(home, 'out'), '--json', ...extra], { DCX_HOME: home, ...env });

  test('(a) the TCP port unreachable: `dcx fetch` confirms over HTTPS, exit 0, one confirmation on the server', async () => {
    const home = await newClientHome();
    const result = await fetchInto(home);
    expect(result.stderr).not.toContain('dcx:');
    expect(result.code).toBe(0);
    const { deliveryId, status } = JSON.parse(result.stdout) as { deliveryId: string; status: string };
    expect(status).toBe('accepted');
    const delivery = await deliveryOf(server, deliveryId);
    expect(delivery.status).toBe('confirmed');
    expect(delivery.events.filter((e) => e.type === 'confirmed')).toHaveLength(1);
    expect(await outboxOf(home)).toEqual([]);
    await expect(stat(join(home, 'receipts', `${deliveryId}.receipt`))).resolves.toBeTruthy();
  });

  test('(b) --via https goes straight to HTTPS; --via tcp fails (exit 6), keeps the confirmation, `dcx retry` sends it', async () => {
    const home = await newClientHome();
    const https = await fetchInto(home, ['--via', 'https']);
    expect(https.code).toBe(0);
    expect(JSON.parse(https.stdout)).toMatchObject({ status: 'accepted' });

    const tcp = await fetchInto(home, ['--via', 'tcp', '--confirm-timeout', '1']);
    expect(tcp.code).toBe(6);
    expect(tcp.stderr).toMatch(/cannot reach the confirmation server 127\.0\.0\.2:\d+.*kept in the outbox; `dcx retry` sends it/);
    const [file] = await outboxOf(home);
    const deliveryId = file.replace(/\.json$/, '');
    const entry = JSON.parse(await readFile(join(home, 'outbox', file), 'utf8')) as { attempts: number; lastError: string };
    expect(entry.attempts).toBe(1);
    expect(entry.lastError).toMatch(/cannot reach/);
    expect((await deliveryOf(server, deliveryId)).status).toBe('sent');

    const retry = await dcx(['retry', '--all', '--json'], { DCX_HOME: home });
    expect(retry.stderr).not.toContain('dcx:');
    expect(retry.code).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ confirmed: 1, failed: 0, items: [{ deliveryId, status: 'accepted' }] });
    expect(await outboxOf(home)).toEqual([]);
    expect((await deliveryOf(server, deliveryId)).status).toBe('confirmed');
  });

  test('(c) through a CONNECT proxy (HTTPS_PROXY/HTTP_PROXY): download and confirmation pass it; NO_PROXY bypasses it', async () => {
    const proxy = await startProxy();
    try {
      const home = await newClientHome();
      const env = { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url };
      const result = await fetchInto(home, [], env);
      expect(result.stderr).not.toContain('dcx:');
      expect(result.code).toBe(0);
      const { deliveryId } = JSON.parse(result.stdout) as { deliveryId: string };
      expect((await deliveryOf(server, deliveryId)).status).toBe('confirmed');
      const port = new URL(server.url).port;
      // The bundle download (our own HTTP client) and the confirmation POST (fetch through undici).
      expect(proxy.lines()).toEqual(expect.arrayContaining([`CONNECT 127.0.0.1:${port} 200`, `CONNECT 127.0.0.2:${port} 200`]));

      const seen = proxy.lines().length;
      const bypass = await fetchInto(await newClientHome(), [], { ...env, NO_PROXY: '127.0.0.1,127.0.0.2' });
      expect(bypass.code).toBe(0);
      expect(proxy.lines()).toHaveLength(seen);
    } finally {
      await proxy.stop();
    }
  });

  test('(d) the proxy refusing the confirmation: a clear message, exit 6, kept; `dcx retry` once the proxy allows it', async () => {
    const refusing = await startProxy({ deny: ['127.0.0.2'] });
    const env = { HTTP_PROXY: refusing.url, HTTPS_PROXY: refusing.url };
    const home = await newClientHome();
    let deliveryId: string;
    try {
      const result = await fetchInto(home, [], env);
      expect(result.code).toBe(6);
      expect(result.stderr).toMatch(
        new RegExp(`the proxy 127\\.0\\.0\\.1:${refusing.port} refused to connect to 127\\.0\\.0\\.2:\\d+: 403.*kept in the outbox`),
      );
      const files = await outboxOf(home);
      expect(files).toHaveLength(1);
      deliveryId = files[0].replace(/\.json$/, '');
      expect((await stat(join(home, 'outbox', files[0]))).mode & 0o777).toBe(0o600);
      const saved = await readdir(join(home, 'out'));
      expect(saved).toEqual(['report.pdf']);
    } finally {
      await refusing.stop();
    }
    const fixed = await startProxy({ port: refusing.port });
    try {
      const retry = await dcx(['retry', '--all'], { DCX_HOME: home, ...env });
      expect(retry.stderr).not.toContain('dcx:');
      expect(retry.code).toBe(0);
      expect(retry.stdout).toContain(`confirmed ${deliveryId}`);
      expect(fixed.lines().some((line) => line.startsWith('CONNECT 127.0.0.2:'))).toBe(true);
      expect(await outboxOf(home)).toEqual([]);
      const delivery = await deliveryOf(server, deliveryId);
      expect(delivery.status).toBe('confirmed');
      expect(delivery.events.filter((e) => e.type === 'confirmed')).toHaveLength(1);
    } finally {
      await fixed.stop();
    }
  });

  test('(f) POST /api/confirmations: garbage 400, oversize 413, another type 415; the server stays up and confirms', async () => {
    const post = (body: Buffer | string, type: string) =>
      fetch(`${server.url}/api/confirmations`, { method: 'POST', headers: { 'content-type': type }, body });
    const garbage = await post(randomBytes(64), CONFIRMATION_MEDIA_TYPE);
    expect(garbage.status).toBe(400);
    expect(garbage.headers.get('content-type')).toBe(ANSWER_MEDIA_TYPE);
    const frames: AnswerStatus[] = [];
    new FrameParser().parse(Buffer.from(await garbage.arrayBuffer()), (frame) => frames.push(decodeAnswer(frame).status));
    expect(frames).toEqual([AnswerStatus.Malformed]);

    expect((await post(Buffer.alloc(70_000, 1), CONFIRMATION_MEDIA_TYPE)).status).toBe(413);
    expect((await post(JSON.stringify({ frame: 'x' }), 'application/json')).status).toBe(415);
    expect((await post('hello', 'text/plain')).status).toBe(415);
    const two = await post(Buffer.concat([unknownFrame(), unknownFrame()]), CONFIRMATION_MEDIA_TYPE);
    expect(two.status).toBe(400);

    const unknown = await post(unknownFrame(), CONFIRMATION_MEDIA_TYPE);
    expect(unknown.status).toBe(200);
    const answers: AnswerStatus[] = [];
    new FrameParser().parse(Buffer.from(await unknown.arrayBuffer()), (frame) => answers.push(decodeAnswer(frame).status));
    expect(answers).toEqual([AnswerStatus.Unknown]);

    const after = await fetchInto(await newClientHome(), ['--via', 'https']);
    expect(after.code).toBe(0);
  });
});

describe('TLS on the confirmation port (CONFIRM_TLS_CERT/KEY), a test CA in NODE_EXTRA_CA_CERTS', () => {
  let server: RunningServer;
  let dir: string;
  let bundleUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-tls-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=dcx test CA');
    openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-out',
      'server.pem',
    );
    // An https server URL is how the client knows the confirmation port speaks TLS (PROTOCOL.md §4.2).
    server = await startServer('pglite', {
      PUBLIC_URL: 'https://127.0.0.1:1',
      CONFIRM_TLS_CERT: join(dir, 'server.pem'),
      CONFIRM_TLS_KEY: join(dir, 'server.key'),
    });
    await writeFile(join(dir, 'doc.txt'), randomBytes(10_000));
    const content = await publish(server, join(dir, 'doc.txt'), 'public');
    bundleUrl = `${server.url}/api/contents/${content.id}/bundle`;
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('the client verifies the certificate against NODE_EXTRA_CA_CERTS and confirms over TLS (--via tcp and auto)', async () => {
    for (const via of ['tcp', 'auto']) {
      const home = await newClientHome();
      const result = await dcx(['fetch', bundleUrl, '--out', join(home, 'out'), '--via', via, '--json'], {
        DCX_HOME: home,
        NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem'),
      });
      expect(result.stderr).not.toContain('dcx:');
      expect(result.code).toBe(0);
      const { deliveryId } = JSON.parse(result.stdout) as { deliveryId: string };
      expect((await deliveryOf(server, deliveryId)).status).toBe('confirmed');
    }
  });

  test('without the CA the certificate is refused with what to do (exit 6, kept in the outbox)', async () => {
    const home = await newClientHome();
    const result = await dcx(['fetch', bundleUrl, '--out', join(home, 'out'), '--via', 'tcp'], { DCX_HOME: home });
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/TLS certificate this client does not trust .*NODE_EXTRA_CA_CERTS.*kept in the outbox/);
    expect(await outboxOf(home)).toHaveLength(1);
  });

  test('plain frames (clients and bundles from before TLS) are still answered on the same port', async () => {
    const answers = await exchange(server.confirmPort, unknownFrame());
    expect(answers.map((a) => a.status)).toEqual([AnswerStatus.Unknown]);
  });
});
