import { randomBytes } from 'node:crypto';
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLIENT_KEY_HEADER } from '../src/protocol/constants.js';
import { generateClientIdentity } from '../src/protocol/keys.js';
import { verifyWebhookSignature } from '../src/server/webhooks/webhook-signature.js';
import { dcx, newClientHome } from './support/cli-process.js';
import { until } from './support/eventually.js';
import { http } from './support/http.js';
import { DatabaseMode, RunningServer, startServer } from './support/server-process.js';

/**
 * Issue 3, manager side, end to end: webhooks against a real HTTP receiver, expiry with a short TTL,
 * a late `dcx` confirmation, re-issue, the receipt endpoint with `dcx verify-receipt`, counts and CSV.
 */

// Long enough for a `dcx fetch` on a loaded machine to confirm in time; short enough to wait for.
const TTL_SECONDS = 10;
const BACKOFF_BASE_MS = 150;

interface Received {
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
  answered: number;
}

/** A webhook receiver on a free port that answers 500 to its first `failures` requests, then 204. */
class Receiver {
  readonly requests: Received[] = [];
  private constructor(
    private readonly server: Server,
    private failures: number,
  ) {}

  static async start(failures: number): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, failures);
    server.on('request', (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const answered = receiver.failures > 0 ? 500 : 204;
        if (receiver.failures > 0) receiver.failures--;
        receiver.requests.push({ at: Date.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered });
        res.statusCode = answered;
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/dcx`;
  }

  delivered(): { id: string; deliveryId: string; type: string; status: string | null; delivery: { id: string; status: string } | null }[] {
    return this.requests.filter((r) => r.answered === 204).map((r) => JSON.parse(r.body));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect({ status: response.status, text: response.status === status ? '' : text }).toEqual({ status, text: '' });
  return (text ? JSON.parse(text) : null) as T;
}

function adminJson(server: RunningServer, method: string, path: string, body: unknown): Promise<Response> {
  // support/http sends no body; webhooks need one.
  return fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
}

interface DeliveryDetail {
  id: string;
  status: string;
  expiredAt: string | null;
  reissuedFrom: string | null;
  clientFingerprint: string | null;
  events: { type: string; reason: string | null; detail: Record<string, unknown> | null }[];
}

describe.each<DatabaseMode>(['postgres', 'pglite'])('manager: webhooks, expiry, re-issue, receipts, export (%s)', (mode) => {
  let server: RunningServer;
  let work: string;
  let content: { id: string; bundleUrl: string };
  const delivery = async (id: string) => json<DeliveryDetail>(await server.admin(`/api/deliveries/${id}`), 200);

  beforeAll(async () => {
    server = await startServer(mode, {
      DELIVERY_TTL: `${TTL_SECONDS}s`,
      EXPIRY_CHECK_INTERVAL_MS: '250',
      WEBHOOK_BACKOFF_BASE_MS: String(BACKOFF_BASE_MS),
      WEBHOOK_BACKOFF_MAX_MS: '1000',
      WEBHOOK_POLL_INTERVAL_MS: '100',
      WEBHOOK_MAX_ATTEMPTS: '5',
      WEBHOOK_TIMEOUT_MS: '2000',
    });
    work = await mkdtemp(join(tmpdir(), 'dcx-manager-'));
    await writeFile(join(work, 'policy.pdf'), randomBytes(100_000));
    const published = await dcx(['publish', join(work, 'policy.pdf'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    content = JSON.parse(published.stdout) as { id: string; bundleUrl: string };
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('webhooks: signed POSTs, retried with backoff after failures, in order per delivery; attempts visible; secret shown once', async () => {
    const flaky = await Receiver.start(2);
    const confirmedOnly = await Receiver.start(0);
    try {
      expect((await adminJson(server, 'POST', '/api/webhooks', { url: 'not a url' })).status).toBe(400);
      expect((await adminJson(server, 'POST', '/api/webhooks', { url: flaky.url, events: ['bogus'] })).status).toBe(400);
      expect(
        (await fetch(`${server.url}/api/webhooks`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status,
      ).toBe(401);

      const secret = 'whsec_test_' + randomBytes(16).toString('hex');
      const hook = await json<{ id: string; secret: string }>(
        await adminJson(server, 'POST', '/api/webhooks', { url: flaky.url, secret }),
        201,
      );
      expect(hook.secret).toBe(secret);
      const second = await json<{ id: string; secret: string; events: string[] }>(
        await adminJson(server, 'POST', '/api/webhooks', { url: confirmedOnly.url, events: ['confirmed'] }),
        201,
      );
      expect(second.secret).toMatch(/^whsec_/);
      expect(second.events).toEqual(['confirmed']);
      const listed = await json<Record<string, unknown>[]>(await server.admin('/api/webhooks'), 200);
      expect(listed.map((w) => w.id)).toEqual([hook.id, second.id]);
      expect(JSON.stringify(listed)).not.toContain(secret);

      const fetched = await dcx(['fetch', content.bundleUrl, '--out', await mkdtemp(join(tmpdir(), 'dcx-out-')), '--json'], {
        DCX_HOME: await newClientHome(),
      });
      expect(fetched.code).toBe(0);
      const { deliveryId } = JSON.parse(fetched.stdout) as { deliveryId: string };

      const events = await until('issued, sent and confirmed at the flaky receiver', async () => {
        const mine = flaky.delivered().filter((e) => e.deliveryId === deliveryId);
        return mine.length >= 3 ? mine : null;
      });
      // In the audit trail's order: the client may confirm before the server records its last byte sent,
      // and then the late "sent" leaves the delivery confirmed.
      const trail = (await json<{ events: { id: string; type: string }[] }>(await server.admin(`/api/deliveries/${deliveryId}`), 200))
        .events;
      expect(events.map((e) => e.id)).toEqual(trail.map((e) => e.id));
      expect([...events.map((e) => e.type)].sort()).toEqual(['confirmed', 'issued', 'sent']);
      const confirmedAt = events.findIndex((e) => e.type === 'confirmed');
      expect(events.map((e) => e.status)).toEqual(events.map((e, i) => (i > confirmedAt ? 'confirmed' : e.type)));
      expect(events[2].delivery).toMatchObject({ id: deliveryId });

      // Every request is signed over "<timestamp>.<body>".
      for (const request of flaky.requests) {
        expect(
          verifyWebhookSignature(
            secret,
            request.headers['dcx-signature'] as string,
            request.headers['dcx-timestamp'] as string,
            request.body,
          ),
        ).toBe(true);
        expect(
          verifyWebhookSignature(
            secret,
            request.headers['dcx-signature'] as string,
            request.headers['dcx-timestamp'] as string,
            request.body + ' ',
          ),
        ).toBe(false);
      }
      // The first event failed twice, then went through; later waits are longer (backoff), and
      // no later event of the delivery was sent before it succeeded.
      const mine = flaky.requests.filter((r) => JSON.parse(r.body).deliveryId === deliveryId);
      const first = mine.slice(0, 3);
      expect(first.map((r) => r.answered)).toEqual([500, 500, 204]);
      expect(new Set(first.map((r) => JSON.parse(r.body).id)).size).toBe(1);
      expect(first.map((r) => r.body)).toEqual([first[0].body, first[0].body, first[0].body]);
      expect(first[1].at - first[0].at).toBeGreaterThanOrEqual(BACKOFF_BASE_MS - 20);
      expect(first[2].at - first[1].at).toBeGreaterThanOrEqual(2 * BACKOFF_BASE_MS - 20);
      const ids = mine.map((r) => Number(JSON.parse(r.body).id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));

      const only = await until('the confirmed event at the second receiver', async () =>
        confirmedOnly.delivered().find((e) => e.deliveryId === deliveryId),
      );
      expect(only.type).toBe('confirmed');
      expect(confirmedOnly.delivered().filter((e) => e.deliveryId === deliveryId)).toHaveLength(1);

      const attempts = await json<{ eventId: string; attempt: number; statusCode: number | null; success: boolean; durationMs: number }[]>(
        await server.admin(`/api/webhooks/${hook.id}/attempts`),
        200,
      );
      const forFirst = attempts.filter((a) => a.eventId === events[0].id).reverse();
      expect(forFirst.map((a) => [a.attempt, a.statusCode, a.success])).toEqual([
        [1, 500, false],
        [2, 500, false],
        [3, 204, true],
      ]);
      const detail = await json<{ jobs: { pending: number; delivered: number; failed: number }; recentAttempts: unknown[] }>(
        await server.admin(`/api/webhooks/${hook.id}`),
        200,
      );
      expect(detail.jobs).toEqual({ pending: 0, delivered: 3, failed: 0 });
      expect(detail.recentAttempts.length).toBeGreaterThanOrEqual(5);
      expect(JSON.stringify(detail)).not.toContain(secret);
      expect(server.output()).not.toContain(secret);

      for (const id of [hook.id, second.id]) expect((await server.admin(`/api/webhooks/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await server.admin(`/api/webhooks/${hook.id}`)).status).toBe(404);
      expect(await json<unknown[]>(await server.admin('/api/webhooks'), 200)).toEqual([]);
    } finally {
      await flaky.stop();
      await confirmedOnly.stop();
    }
  });

  test('expiry: unconfirmed deliveries expire; a late `dcx` confirmation is refused and recorded; re-issue → `dcx fetch` confirms', async () => {
    // An anonymous delivery saved by a "browser", and one sealed to a client key; neither confirmed.
    const saved = await http(content.bundleUrl);
    expect(saved.status).toBe(200);
    const anonymousId = saved.headers.get('dcx-delivery-id')!;
    const bundlePath = join(work, 'policy.pdf.dcx');
    await writeFile(bundlePath, Buffer.from(await saved.arrayBuffer()));
    const identity = generateClientIdentity();
    const keyed = await http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
    await keyed.arrayBuffer();
    const keyedId = keyed.headers.get('dcx-delivery-id')!;
    expect((await server.admin(`/api/deliveries/${anonymousId}/reissue`, { method: 'POST' })).status).toBe(409);

    const expired = await until(
      'the deliveries to expire',
      async () => {
        const both = [await delivery(anonymousId), await delivery(keyedId)];
        return both.every((d) => d.status === 'expired') ? both : null;
      },
      TTL_SECONDS * 1000 + 15_000,
    );
    for (const d of expired) {
      expect(d.expiredAt).not.toBeNull();
      expect(d.events.filter((e) => e.type === 'expired')).toHaveLength(1);
    }
    expect((await http(`${server.url}/api/deliveries/${anonymousId}/bundle`)).status).toBe(410);

    // Late: the client still asks the server, which refuses and records it; nothing is kept.
    const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
    const home = await newClientHome();
    const late = await dcx(['open', bundlePath, '--out', out, '--trust'], { DCX_HOME: home });
    expect(late.code).toBe(3);
    expect(late.stderr).toMatch(/expired/);
    expect(await readdir(out)).toEqual([]);
    const afterLate = await delivery(anonymousId);
    expect(afterLate.status).toBe('expired');
    expect(afterLate.events.filter((e) => e.type === 'refused').map((e) => e.reason)).toEqual(['expired']);

    // Re-issue: same content, same client; the new bundle URL is fetchable and confirmable.
    const reissued = await json<{
      id: string;
      status: string;
      reissuedFrom: string;
      bundleUrl: string;
      contentId: string;
      requesterIp: string;
    }>(await server.admin(`/api/deliveries/${anonymousId}/reissue`, { method: 'POST' }), 201);
    expect(reissued).toMatchObject({ status: 'issued', reissuedFrom: anonymousId, contentId: content.id, requesterIp: '127.0.0.1' });
    expect(reissued.bundleUrl).toBe(`${server.url}/api/deliveries/${reissued.id}/bundle`);
    expect((await server.admin(`/api/deliveries/${anonymousId}/reissue`, { method: 'POST' })).status).toBe(409);
    const old = await delivery(anonymousId);
    expect(old.events.at(-1)).toMatchObject({ type: 'reissued', detail: { newDeliveryId: reissued.id } });

    const fetched = await dcx(['fetch', reissued.bundleUrl, '--out', out, '--json'], { DCX_HOME: home });
    expect(fetched.code).toBe(0);
    expect(JSON.parse(fetched.stdout)).toMatchObject({ deliveryId: reissued.id, status: 'accepted' });
    expect(await delivery(reissued.id)).toMatchObject({ status: 'confirmed', reissuedFrom: anonymousId });
    expect((await server.admin(`/api/deliveries/${reissued.id}/reissue`, { method: 'POST' })).status).toBe(409);

    const keyedAgain = await json<{ id: string; clientFingerprint: string }>(
      await server.admin(`/api/deliveries/${keyedId}/reissue`, { method: 'POST' }),
      201,
    );
    expect(keyedAgain.clientFingerprint).toBe(identity.fingerprint);
  });

  test('receipt: the endpoint returns the signed receipt and its fields; `dcx verify-receipt` accepts it and refuses a flipped byte', async () => {
    const home = await newClientHome();
    const fetched = await dcx(['fetch', content.bundleUrl, '--out', await mkdtemp(join(tmpdir(), 'dcx-out-')), '--json'], {
      DCX_HOME: home,
    });
    expect(fetched.code).toBe(0);
    const report = JSON.parse(fetched.stdout) as { deliveryId: string; receiptPath: string; files: { sha256: string }[] };

    const receipt = await json<{
      deliveryId: string;
      contentSha256: string;
      clientFingerprint: string;
      receipt: string;
      confirmedAt: string;
      serverKey: string;
    }>(await server.admin(`/api/deliveries/${report.deliveryId}/receipt`), 200);
    expect(receipt.deliveryId).toBe(report.deliveryId);
    expect(receipt.contentSha256).toBe(report.files[0].sha256);
    expect(receipt.clientFingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(receipt.receipt, 'base64').equals(await readFile(report.receiptPath))).toBe(true);

    const jsonPath = join(work, 'receipt.json');
    await writeFile(jsonPath, JSON.stringify(receipt));
    const fromJson = await dcx(['verify-receipt', jsonPath, '--json'], { DCX_HOME: home });
    expect(fromJson.code).toBe(0);
    expect(JSON.parse(fromJson.stdout)).toMatchObject({ valid: true, deliveryId: report.deliveryId, server: server.url });
    expect((await dcx(['verify-receipt', report.receiptPath], { DCX_HOME: home })).code).toBe(0);

    const flipped = await readFile(report.receiptPath);
    flipped[40] ^= 0x01;
    const badPath = join(work, 'bad.receipt');
    await writeFile(badPath, flipped);
    const refused = await dcx(['verify-receipt', badPath], { DCX_HOME: home });
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/not valid/);

    const unconfirmed = (await http(content.bundleUrl)).headers.get('dcx-delivery-id')!;
    expect((await server.admin(`/api/deliveries/${unconfirmed}/receipt`)).status).toBe(404);
  });

  test('dashboard API: from/to filters, counts with zeros, CSV export with injection escaping', async () => {
    const evilName = '=HYPERLINK("http-x",1).txt';
    await writeFile(join(work, evilName), Buffer.from('formula'));
    const published = await dcx(['publish', join(work, evilName), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    const evil = JSON.parse(published.stdout) as { id: string; bundleUrl: string };
    await writeFile(join(work, 'unused.bin'), Buffer.from('never fetched'));
    const unused = JSON.parse(
      (
        await dcx(['publish', join(work, 'unused.bin'), '--server', server.url, '--json'], {
          DCX_HOME: await newClientHome(),
          DCX_ADMIN_TOKEN: server.adminToken,
        })
      ).stdout,
    ) as { id: string };
    const response = await http(evil.bundleUrl);
    await response.arrayBuffer();
    const evilDelivery = response.headers.get('dcx-delivery-id')!;
    await until('the last byte to count as sent', async () => (await delivery(evilDelivery)).status === 'sent');

    const counts = await json<{ contentId: string; contentName: string; sent: number; total: number }[]>(
      await server.admin('/api/deliveries/counts'),
      200,
    );
    expect(counts.find((c) => c.contentId === unused.id)).toEqual({
      contentId: unused.id,
      contentName: 'unused.bin',
      issued: 0,
      sent: 0,
      confirmed: 0,
      failed: 0,
      expired: 0,
      total: 0,
    });
    expect(counts.find((c) => c.contentId === evil.id)).toMatchObject({ sent: 1, total: 1 });
    const policy = counts.find((c) => c.contentId === content.id)!;
    expect(policy.total).toBeGreaterThanOrEqual(5);

    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await json<{ total: number }>(await server.admin(`/api/deliveries?from=${encodeURIComponent(future)}`), 200)).total).toBe(0);
    const past = new Date(Date.now() - 3600_000).toISOString();
    const inRange = await json<{ total: number }>(
      await server.admin(`/api/deliveries?contentId=${evil.id}&from=${encodeURIComponent(past)}&to=${encodeURIComponent(future)}`),
      200,
    );
    expect(inRange.total).toBe(1);
    expect((await server.admin('/api/deliveries?from=yesterday')).status).toBe(400);

    const csv = await server.admin(`/api/deliveries/export.csv?contentId=${evil.id}`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).split('\r\n');
    expect(lines[0]).toBe(
      'id,content_id,content_name,status,client_fingerprint,requester_ip,issued_at,sent_at,confirmed_at,failed_at,expired_at,expires_at,bytes_sent,reissued_from',
    );
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(lines[1].startsWith(`${evilDelivery},${evil.id},"'=HYPERLINK(""http-x"",1).txt",sent,`)).toBe(true);

    const all = (await (await server.admin('/api/deliveries/export.csv')).text()).trim().split('\r\n');
    const total = (await json<{ total: number }>(await server.admin('/api/deliveries?pageSize=1'), 200)).total;
    expect(all).toHaveLength(total + 1);
    expect((await http(`${server.url}/api/deliveries/export.csv`)).status).toBe(401);
  });
});
