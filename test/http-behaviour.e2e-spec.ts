import { randomBytes, randomUUID } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { request } from 'node:http';
import { eventually } from './support/eventually.js';
import { http } from './support/http.js';
import { RunningServer, startServer } from './support/server-process.js';

/**
 * HTTP behaviour the server keeps whatever framework serves it: what
 * browsers, scripts and operators see at the edges: bodies, errors, paths, addresses and log lines.
 */

interface LogLine {
  level: number;
  msg?: string;
  reqId?: string;
  req?: { id?: string; method?: string; url?: string; remoteAddress?: string };
  res?: { statusCode?: number };
}

/** The access lines (those with `req`) of the request with this id. */
function accessLines(server: RunningServer, requestId: string): LogLine[] {
  return logLines(server).filter((line) => line.reqId === requestId && line.req !== undefined);
}

function logLines(server: RunningServer): LogLine[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return []; // a line still being written
      }
    });
}

/** One request with a body; answers status, headers and body text. */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function multipart(name: string, bytes: Buffer): { body: Buffer; contentType: string } {
  const boundary = `dcx-${randomBytes(8).toString('hex')}`;
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  return {
    body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Whether this machine can serve on the IPv6 loopback at all. */
function ipv6LoopbackWorks(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(0, '::1', () => probe.close(() => resolve(true)));
  });
}

describe('HTTP behaviour at the edges (postgres)', () => {
  let server: RunningServer;
  let auth: Record<string, string>;
  let bigContentId: string;

  beforeAll(async () => {
    server = await startServer('postgres', { LOG_LEVEL: 'info' });
    auth = { authorization: `Bearer ${server.adminToken}` };
    // Large enough that a download cut off after its first bytes is still being written.
    const { body, contentType } = multipart('big.bin', randomBytes(24 * 1024 * 1024));
    const created = await send(`${server.url}/api/contents`, 'POST', { ...auth, 'content-type': contentType }, body);
    expect(created.status).toBe(201);
    bigContentId = (JSON.parse(created.text) as { id: string }).id;
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('bodyless POST and DELETE routes accept an empty body sent with a JSON content type', async () => {
    const json = { 'content-type': 'application/json' };
    const reissue = await send(`${server.url}/api/deliveries/${randomUUID()}/reissue`, 'POST', { ...auth, ...json });
    expect(reissue.status).toBe(404);
    const remove = await send(`${server.url}/api/contents/${randomUUID()}`, 'DELETE', { ...auth, ...json });
    expect(remove.status).toBe(404);
    const logout = await send(`${server.url}/api/session`, 'DELETE', json);
    expect(logout.status).toBe(204);
    // An empty login body is a validation error, as a missing token is.
    const login = await send(`${server.url}/api/session`, 'POST', json);
    expect(login.status).toBe(400);
    expect(JSON.parse(login.text)).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  });

  test('the login takes a form body as README says (a browser without scripts); the cookie it sets still refuses a write from elsewhere', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const wrong = await send(`${server.url}/api/session`, 'POST', form, 'token=not-the-token');
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const right = await send(`${server.url}/api/session`, 'POST', form, `token=${encodeURIComponent(server.adminToken)}`);
    expect(right.status).toBe(204);
    const setCookie = ([] as string[]).concat(right.headers['set-cookie'] ?? []);
    expect(setCookie.join(';')).toMatch(/dcx_admin=v1\..*HttpOnly.*SameSite=Strict/i);
    const cookie = setCookie[0].split(';')[0];
    const crossSite = await send(`${server.url}/api/contents/${randomUUID()}`, 'DELETE', { cookie, 'sec-fetch-site': 'cross-site' });
    expect(crossSite.status).toBe(403);
    const sameOrigin = await send(`${server.url}/api/contents/${randomUUID()}`, 'DELETE', { cookie, 'sec-fetch-site': 'same-origin' });
    expect(sameOrigin.status).toBe(404);
  });

  test('malformed JSON and unsupported media types answer the usual error shape', async () => {
    const malformed = await send(`${server.url}/api/session`, 'POST', { 'content-type': 'application/json' }, '{bad');
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.text) as unknown).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: expect.any(String) as unknown,
    });

    const xml = await send(`${server.url}/api/webhooks`, 'POST', { ...auth, 'content-type': 'application/xml' }, '<url/>');
    expect(xml.status).toBe(415);
    expect(JSON.parse(xml.text) as unknown).toEqual({
      statusCode: 415,
      error: 'Unsupported Media Type',
      message: expect.any(String) as unknown,
    });
  });

  test('paths match without regard to case, as they always did; HEAD on a bundle URL still issues nothing', async () => {
    expect((await http(`${server.url}/Admin`)).status).toBe(200);
    expect((await http(`${server.url}/HEALTH`)).status).toBe(200);
    const head = await http(`${server.url}/api/contents/${bigContentId}/BUNDLE`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('dcx-delivery-id')).toBeNull();
    const list = (await (await server.admin(`/api/deliveries?contentId=${bigContentId}`)).json()) as { total: number };
    expect(list.total).toBe(0);
  });

  test('the HTTP port answers on IPv6 too', async () => {
    if (!(await ipv6LoopbackWorks())) return; // nothing to check on a machine without IPv6
    const port = new URL(server.url).port;
    expect((await http(`http://[::1]:${port}/health`)).status).toBe(200);
  });

  test('a download or an event stream the client leaves gets its access line ("request aborted"), and the delivery is failed', async () => {
    const requestId = `cut-${randomBytes(6).toString('hex')}`;
    const deliveryId = await new Promise<string>((resolve, reject) => {
      const req = request(
        `${server.url}/api/contents/${bigContentId}/bundle`,
        { headers: { 'x-request-id': requestId }, agent: false },
        (res) => {
          res.once('data', () => {
            res.destroy();
            resolve(String(res.headers['dcx-delivery-id']));
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
    const delivery = await eventually(
      async () => (await (await server.admin(`/api/deliveries/${deliveryId}`)).json()) as { status: string },
      (d) => d.status === 'failed',
    );
    expect(delivery.status).toBe('failed');
    const line = await eventually(() => Promise.resolve(accessLines(server, requestId)[0]), Boolean);
    expect(line).toMatchObject({
      msg: 'request aborted',
      req: {
        method: 'GET',
        url: `/api/contents/${bigContentId}/bundle`,
        remoteAddress: expect.stringMatching(/^(::ffff:)?127\.0\.0\.1$/) as unknown,
      },
      res: { statusCode: 200 },
    });

    const streamId = `sse-${randomBytes(6).toString('hex')}`;
    await new Promise<void>((resolve, reject) => {
      const req = request(
        `${server.url}/api/events/deliveries`,
        { headers: { ...auth, 'x-request-id': streamId }, agent: false },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.destroy();
          resolve();
        },
      );
      req.on('error', reject);
      req.end();
    });
    const streamLine = await eventually(() => Promise.resolve(accessLines(server, streamId)[0]), Boolean);
    expect(streamLine).toMatchObject({ msg: 'request aborted', req: { url: '/api/events/deliveries' } });
    expect([...accessLines(server, requestId), ...accessLines(server, streamId)]).toHaveLength(2);
  });

  test('a request the router refuses is logged in one short line without the credentials it carried', async () => {
    const cookie = `dcx_admin=v1.${randomBytes(12).toString('hex')}`;
    const answer = await send(`${server.url}/api/contents/%ZZ`, 'GET', { ...auth, cookie, 'dcx-access-token': 'access-token-in-a-header' });
    expect(answer.status).toBe(400);
    const line = await eventually(
      () =>
        Promise.resolve(
          server
            .output()
            .split('\n')
            .find((l) => l.includes('%ZZ')),
        ),
      Boolean,
    );
    expect(line).toBeDefined();
    expect(line!.length).toBeLessThan(2000);
    const output = server.output();
    expect(output).not.toContain(server.adminToken);
    expect(output).not.toContain(cookie);
    expect(output).not.toContain('access-token-in-a-header');
  });

  test('an upload cut off by its client is not reported as a database outage', async () => {
    const requestId = `upload-${randomBytes(6).toString('hex')}`;
    const port = Number(new URL(server.url).port);
    await new Promise<void>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        const boundary = 'cutoff';
        socket.write(
          `POST /api/contents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${server.adminToken}\r\nX-Request-Id: ${requestId}\r\n` +
            `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 5000000\r\n\r\n` +
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n` +
            'Content-Type: application/octet-stream\r\n\r\n',
        );
        socket.write(randomBytes(200_000), () => setTimeout(() => (socket.destroy(), resolve()), 300));
      });
      socket.on('error', reject);
    });
    const line = await eventually(() => Promise.resolve(accessLines(server, requestId)[0]), Boolean);
    expect(line).toMatchObject({ msg: 'request aborted', req: { method: 'POST', url: '/api/contents' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(server.output()).not.toContain('database unavailable');
    expect((await http(`${server.url}/health`)).status).toBe(200);
    // A request whose body was read whole still gets its error answer.
    const refused = await send(
      `${server.url}/api/webhooks`,
      'POST',
      { ...auth, 'content-type': 'application/json' },
      JSON.stringify({ url: 'ftp://x', pad: 'x'.repeat(100_000) }),
    );
    expect(refused.status).toBe(400);
  });
});

describe('LOG_LEVEL=warn (postgres)', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer('postgres', { LOG_LEVEL: 'warn' });
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('no line below warn, from start-up on', async () => {
    expect((await http(`${server.url}/health`)).status).toBe(200);
    expect((await http(`${server.url}/no-such-page`)).status).toBe(404);
    const lines = await eventually(
      () => Promise.resolve(logLines(server)),
      (l) => l.some((line) => line.res?.statusCode === 404),
    );
    expect(lines.some((line) => line.res?.statusCode === 404)).toBe(true);
    expect(lines.filter((line) => line.level < 40).map((line) => line.msg)).toEqual([]);
  });
});
