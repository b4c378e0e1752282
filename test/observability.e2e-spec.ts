import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { get, type IncomingMessage } from 'node:http';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER } from '../src/protocol/constants.js';
import { generateClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { dcx, newClientHome } from './support/cli-process.js';
import { http } from './support/http.js';
import { eventually } from './support/eventually.js';
import { RunningServer, startServer } from './support/server-process.js';
import { exchange } from './support/tcp.js';

const METRICS_TOKEN = `metrics-${randomBytes(16).toString('base64url')}`;

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  req?: { id: string; url: string; headers?: unknown; userAgent?: string };
  res?: { statusCode: number };
  deliveryId?: string;
  status?: string;
  remoteAddress?: string;
}

/** The value of one sample of the exposition text, or undefined when it is not there. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** One admin query against the server's own database, as the PostgreSQL superuser. */
async function onDatabaseServer(server: RunningServer, sql: string): Promise<void> {
  const url = new URL(server.databaseUrl!);
  const name = url.pathname.slice(1);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(sql.replaceAll('$DB', name));
  } finally {
    await client.end();
  }
}

describe('observability: health, metrics, logs, OpenAPI (postgres)', () => {
  let server: RunningServer;
  let work: string;

  beforeAll(async () => {
    server = await startServer('postgres', { METRICS_TOKEN, LOG_LEVEL: 'info' });
    work = await mkdtemp(join(tmpdir(), 'dcx-obs-'));
  });

  afterAll(async () => {
    await server?.stop();
  });

  const logLines = (): LogLine[] =>
    server
      .output()
      .split('\n')
      .slice(0, -1) // the last piece is empty or a line still being written
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as LogLine);

  /** The first log line that satisfies `predicate`, once the server has written it (undefined after 10 s). */
  const logLine = (predicate: (line: LogLine) => boolean): Promise<LogLine | undefined> =>
    eventually(
      async () => logLines().find(predicate),
      (found) => found !== undefined,
      10_000,
      100,
    );

  test('GET /health: 200 with the database and the confirmation listener up, public', async () => {
    const response = await http(`${server.url}/health`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; details: Record<string, { status: string }> };
    expect(body.status).toBe('ok');
    expect(body.details.database.status).toBe('up');
    expect(body.details.confirmationListener.status).toBe('up');
  });

  test('GET /metrics needs the admin token or METRICS_TOKEN', async () => {
    expect((await http(`${server.url}/metrics`)).status).toBe(401);
    expect((await http(`${server.url}/metrics`, { headers: { authorization: 'Bearer not-the-right-token' } })).status).toBe(401);
    const asAdmin = await server.admin('/metrics');
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.headers.get('content-type')).toContain('text/plain');
    const asScraper = await http(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(asScraper.status).toBe(200);
    expect(await asScraper.text()).toContain('process_cpu_seconds_total');
  });

  test('publish → fetch → confirm shows in /metrics; logs are JSON with request ids and hold no token', async () => {
    await writeFile(join(work, 'report.pdf'), randomBytes(256 * 1024));
    const published = await dcx(['publish', join(work, 'report.pdf'), '--server', server.url, '--access', 'token', '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    const content = JSON.parse(published.stdout) as { bundleUrl: string; accessToken: string };
    expect(content.accessToken).toEqual(expect.any(String));

    // Without the token, or with a wrong one: 401, and the message says what to pass.
    const without = await dcx(['fetch', content.bundleUrl, '--out', await mkdtemp(join(tmpdir(), 'dcx-out-'))], {
      DCX_HOME: await newClientHome(),
    });
    expect([without.code, without.stderr]).toEqual([
      1,
      expect.stringMatching(/401 .*this content needs its access token: pass it with --access-token <token>/),
    ]);
    const wrong = await dcx(
      ['fetch', content.bundleUrl, '--out', await mkdtemp(join(tmpdir(), 'dcx-out-')), '--access-token', 'not-the-token'],
      {
        DCX_HOME: await newClientHome(),
      },
    );
    expect([wrong.code, wrong.stderr]).toEqual([
      1,
      expect.stringMatching(/403 .*the access token given with --access-token was not accepted/),
    ]);

    const fetched = await dcx(
      ['fetch', content.bundleUrl, '--out', await mkdtemp(join(tmpdir(), 'dcx-out-')), '--access-token', content.accessToken, '--json'],
      {
        DCX_HOME: await newClientHome(),
      },
    );
    expect(fetched.code).toBe(0);
    const { deliveryId } = JSON.parse(fetched.stdout) as { deliveryId: string };
    // The token in the query and in the header, as browsers and scripts send it.
    expect((await http(`${content.bundleUrl}?access=${encodeURIComponent(content.accessToken)}`)).status).toBe(200);

    // "sent" is recorded after the last byte left, and the latency sample once both events committed:
    // a client can be done (and have confirmed) before that, so the scrape waits for them.
    const text = await eventually(
      async () => (await server.admin('/metrics')).text(),
      (scraped) =>
        sample(scraped, 'dcx_confirmation_latency_seconds_count') === 1 && sample(scraped, 'dcx_deliveries{status="sent"}') === 1,
      10_000,
      100,
    );
    expect(sample(text, 'dcx_deliveries{status="confirmed"}')).toBe(1);
    expect(sample(text, 'dcx_deliveries{status="sent"}')).toBe(1);
    expect(sample(text, 'dcx_bundle_bytes_sent_total')).toBeGreaterThan(256 * 1024);
    expect(sample(text, 'dcx_confirmation_latency_seconds_count')).toBe(1);
    expect(sample(text, 'dcx_confirmation_processing_seconds_count{status="accepted"}')).toBe(1);
    // The one sample is the time from the first "sent" event to the "confirmed" one, in the audit trail.
    const database = new pg.Client({ connectionString: server.databaseUrl });
    await database.connect();
    try {
      const { rows } = await database.query<{ seconds: number }>(
        `SELECT extract(epoch FROM c.at - s.at)::float8 AS seconds
           FROM delivery_events c,
                LATERAL (SELECT at FROM delivery_events WHERE delivery_id = c.delivery_id AND type = 'sent' ORDER BY id LIMIT 1) s
          WHERE c.delivery_id = $1 AND c.type = 'confirmed'`,
        [deliveryId],
      );
      // The server's times are JavaScript Dates: each of the two is cut to the millisecond.
      expect(Math.abs(sample(text, 'dcx_confirmation_latency_seconds_sum')! - Math.max(0, rows[0].seconds))).toBeLessThan(0.001);
    } finally {
      await database.end();
    }

    // Request ids: a well-formed one is kept and echoed, anything else replaced.
    const kept = await http(`${server.url}/health`, { headers: { 'x-request-id': 'e2e-obs-42' } });
    expect(kept.headers.get('x-request-id')).toBe('e2e-obs-42');
    const replaced = await http(`${server.url}/health`, { headers: { 'x-request-id': 'not a "valid" id' } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);

    // A line is written once its response finished and reaches us through a pipe: wait for the last ones.
    const requestLine = await logLine((line) => line.req?.id === 'e2e-obs-42');
    await logLine((line) => line.msg === 'confirmation answered' && line.deliveryId === deliveryId);
    await logLine((line) => line.req?.url.includes('access=') === true);
    const lines = logLines();
    expect(requestLine).toMatchObject({ reqId: 'e2e-obs-42', req: { url: '/health' }, res: { statusCode: 200 } });
    const bundleLines = lines.filter((line) => line.req?.url.startsWith('/api/contents/'));
    expect(bundleLines.length).toBeGreaterThanOrEqual(2);
    for (const line of bundleLines) expect(line.reqId).toEqual(expect.any(String));
    expect(lines.find((line) => line.req?.url.includes('access='))?.req?.url).toContain('access=[redacted]');
    // Access-log lines: no headers at all (credentials included), the user agent kept.
    expect(lines.filter((line) => line.req).every((line) => line.req!.headers === undefined)).toBe(true);
    expect(bundleLines.some((line) => typeof line.req!.userAgent === 'string')).toBe(true);
    expect(lines.find((line) => line.msg === 'confirmation answered' && line.deliveryId === deliveryId)).toMatchObject({
      status: 'accepted',
      remoteAddress: '127.0.0.1',
    });

    const output = server.output();
    for (const secret of [server.adminToken, METRICS_TOKEN, content.accessToken]) expect(output).not.toContain(secret);
  });

  test('a confirmation that overtakes the record of the last byte still gives one latency sample, taken by the late "sent"', async () => {
    const before = sample(await (await server.admin('/metrics')).text(), 'dcx_confirmation_latency_seconds_count') ?? 0;
    // Large enough that the server is still writing (held back by a client that stops reading) when it confirms.
    const bytes = randomBytes(48 * 1024 * 1024);
    await writeFile(join(work, 'movie.bin'), bytes);
    const published = await dcx(['publish', join(work, 'movie.bin'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    const { bundleUrl } = JSON.parse(published.stdout) as { bundleUrl: string };
    const identity = generateClientIdentity();
    const response = await new Promise<IncomingMessage>((resolve, reject) =>
      get(bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } }, resolve).on('error', reject),
    );
    response.pause();
    const deliveryId = String(response.headers['dcx-delivery-id']);
    const database = new pg.Client({ connectionString: server.databaseUrl });
    await database.connect();
    try {
      const { rows } = await database.query<{ plugin_data: Buffer }>('SELECT plugin_data FROM deliveries WHERE id = $1', [deliveryId]);
      const { data } = openPluginData(rows[0].plugin_data, { identity });
      const digest = createHash('sha256').update(bytes).digest('hex');
      const [answer] = await exchange(
        server.confirmPort,
        encodeConfirmation({ deliveryId, clientFingerprint: identity.fingerprint, digests: [digest] }, data.confirmSecret),
      );
      expect(answer?.status).toBe(AnswerStatus.Accepted);
      const { rows: held } = await database.query<{ sent_at: Date | null }>('SELECT sent_at FROM deliveries WHERE id = $1', [deliveryId]);
      expect(held[0].sent_at).toBeNull(); // the confirmation did overtake
      response.resume();
      await new Promise((resolve) => response.on('end', resolve));
      const text = await eventually(
        async () => (await server.admin('/metrics')).text(),
        (scraped) => sample(scraped, 'dcx_confirmation_latency_seconds_count') === before + 1,
        10_000,
        100,
      );
      expect(sample(text, 'dcx_confirmation_latency_seconds_count')).toBe(before + 1);
      const { rows: after } = await database.query<{ status: string; sent_at: Date | null }>(
        'SELECT status, sent_at FROM deliveries WHERE id = $1',
        [deliveryId],
      );
      expect(after[0]).toMatchObject({ status: 'confirmed', sent_at: expect.any(Date) });
    } finally {
      await database.end();
    }
  }, 60_000);

  test('GET /api/docs-json describes the API with schemas, publicly; /api/docs serves Swagger UI', async () => {
    const response = await http(`${server.url}/api/docs-json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }>; securitySchemes: Record<string, unknown> };
    };
    for (const path of [
      '/api/contents',
      '/api/contents/{id}',
      '/api/contents/{id}/bundle',
      '/api/deliveries',
      '/api/deliveries/{id}',
      '/api/deliveries/{id}/bundle',
      '/.well-known/dcx',
      '/health',
      '/metrics',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(doc.paths['/api/deliveries/{id}'].get.responses['200'].content?.['application/json'].schema).toEqual({
      $ref: '#/components/schemas/DeliveryDetailView',
    });
    expect(Object.keys(doc.components.schemas.DeliveryView.properties)).toEqual(
      expect.arrayContaining(['id', 'status', 'bytesSent', 'confirmedAt']),
    );
    expect(Object.keys(doc.components.schemas.ContentResponseDto.properties)).toEqual(
      expect.arrayContaining(['id', 'sha256', 'bundleUrl', 'accessToken']),
    );
    expect(Object.keys(doc.components.securitySchemes)).toEqual(expect.arrayContaining(['admin', 'access-token']));
    expect(JSON.stringify(doc)).not.toContain(server.adminToken);

    const ui = await http(`${server.url}/api/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger-ui');
  });

  // Last: it takes the database away.
  test('GET /health: 503 naming the database when it goes away; the server keeps answering and recovers', async () => {
    await onDatabaseServer(server, 'ALTER DATABASE $DB WITH ALLOW_CONNECTIONS false');
    await onDatabaseServer(server, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB'`);
    try {
      const down = await http(`${server.url}/health`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as { status: string; details: Record<string, { status: string; message?: string }> };
      expect(body.status).toBe('error');
      expect(body.details.database).toMatchObject({ status: 'down', message: 'the database did not answer a ping' });
      expect(body.details.confirmationListener.status).toBe('up');
      expect((await http(`${server.url}/.well-known/dcx`)).status).toBe(200);
      expect((await http(`${server.url}/health`)).status).toBe(503);

      // Routes that need the database: 503 with Retry-After and a clear message, not 500, not a hang.
      for (const response of [await server.admin('/api/contents'), await http(`${server.url}/api/catalogue`)]) {
        expect(response.status).toBe(503);
        expect(response.headers.get('retry-after')).toBe('5');
        expect(((await response.json()) as { message: string }).message).toBe('the database is unavailable; try again later');
      }
      // The confirmation receiver asks the client to try later.
      const frame = encodeConfirmation({ deliveryId: randomUUID(), clientFingerprint: '00'.repeat(32), digests: [] }, randomBytes(32));
      expect((await exchange(server.confirmPort, frame))[0]?.status).toBe(AnswerStatus.TryLater);
    } finally {
      await onDatabaseServer(server, 'ALTER DATABASE $DB WITH ALLOW_CONNECTIONS true');
    }
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect((await server.admin('/api/contents')).status).toBe(200);
  });
});
