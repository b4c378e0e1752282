import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import contentDisposition from 'content-disposition';
import { openPluginData } from '../../src/protocol/plugin-data.js';
import { RunningServer, startServer } from '../support/server-process.js';
import {
  fetchBundle,
  Figures,
  inParallel,
  multipart,
  pluginRecordOf,
  rawHttp,
  RawResponse,
  scale,
  sql,
  upload,
} from './support/hostile.js';

const MAX_UPLOAD = 1024 * 1024;

interface Route {
  method: string;
  path: string;
  security: string[];
}

/** Routes that need credentials though their description names no scheme (README's HTTP API table). */
const CREDENTIALS_BY_README = new Set(['GET /api/session', 'GET /api/recipients/me', 'POST /api/recipients/enrol']);

async function files(dir: string): Promise<{ path: string; size: number }[]> {
  const found: { path: string; size: number }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await files(path)));
    else found.push({ path, size: (await stat(path)).size });
  }
  return found;
}

/**
 * The HTTP surface without credentials or with forged ones, hostile upload names and Range headers,
 * X-Forwarded-For from an untrusted peer, and a flood of bundle requests for a token content.
 */
describe('hostile: HTTP (postgres)', () => {
  let server: RunningServer;
  const figures = new Figures('http');
  let tokenContent: { id: string; accessToken?: string };
  let deliveryOfToken: string;
  let routes: Route[];
  let sessionCookie: string;

  beforeAll(async () => {
    server = await startServer('postgres', { LOG_LEVEL: 'warn', MAX_UPLOAD_BYTES: String(MAX_UPLOAD) });
    tokenContent = await upload(server, 'secret.bin', randomBytes(50_000), 'token');
    deliveryOfToken = (await fetchBundle(server.url, tokenContent.id, { 'dcx-access-token': tokenContent.accessToken! })).deliveryId;
    const doc = JSON.parse((await rawHttp(`${server.url}/api/docs-json`)).body.toString()) as {
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        security: (op.security ?? []).flatMap((s) => Object.keys(s)),
      })),
    );
    const referenced = [...new Set(routes.flatMap((r) => r.security))];
    expect(referenced.filter((name) => !(name in doc.components.securitySchemes))).toEqual([]);
    const login = await rawHttp(
      `${server.url}/api/session`,
      'POST',
      { 'content-type': 'application/json' },
      JSON.stringify({ token: server.adminToken }),
    );
    expect(login.status).toBe(204);
    sessionCookie = String(([] as string[]).concat(login.headers['set-cookie'] ?? [])[0]).split(';')[0];
  });

  afterAll(async () => {
    figures.write();
    await server?.stop();
  });

  function urlOf(route: Route): string {
    const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => {
      if (name === 'fingerprint') return 'ab'.repeat(32);
      if (route.path.startsWith('/api/contents/{id}/bundle')) return tokenContent.id;
      if (route.path.startsWith('/api/deliveries/{id}/bundle')) return deliveryOfToken;
      return randomUUID();
    });
    return `${server.url}${path}`;
  }

  const send = (route: Route, headers: Record<string, string>): Promise<RawResponse> => {
    const body = ['POST', 'PATCH', 'PUT'].includes(route.method) ? '{}' : undefined;
    return rawHttp(urlOf(route), route.method, { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, body);
  };

  test('every route of the OpenAPI description: without credentials, with a wrong token, a tampered cookie → 401/403 where credentials are needed; never 500', async () => {
    const [v, expiry, nonce, mac] = sessionCookie.split('=')[1].split('.');
    const flipped = mac.slice(0, -1) + (mac.endsWith('A') ? 'B' : 'A');
    const forged = {
      none: {},
      'wrong bearer token': { authorization: `Bearer ${randomBytes(24).toString('base64url')}` },
      'admin token with a changed last character': {
        authorization: `Bearer ${server.adminToken.slice(0, -1)}${server.adminToken.endsWith('x') ? 'y' : 'x'}`,
      },
      'tampered cookie (MAC)': { cookie: `dcx_admin=${v}.${expiry}.${nonce}.${flipped}`, 'x-dcx-csrf': '1' },
      'tampered cookie (expiry pushed out)': { cookie: `dcx_admin=${v}.${Number(expiry) + 86_400_000}.${nonce}.${mac}`, 'x-dcx-csrf': '1' },
      'cookie of another token': {
        cookie: `dcx_admin=v1.${Date.now() + 3600_000}.${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
        'x-dcx-csrf': '1',
      },
      'wrong access token': { 'dcx-access-token': randomBytes(24).toString('base64url') },
      'bogus DCX-Auth': {
        'dcx-client-key': randomBytes(32).toString('base64url'),
        'dcx-auth': `DCX1 ${Date.now()}.${randomBytes(16).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
      },
    };
    const problems: string[] = [];
    for (const route of routes) {
      // Bundle routes are asked for a token content and its delivery, so they need credentials too.
      const protectedRoute =
        route.security.length > 0 || CREDENTIALS_BY_README.has(`${route.method} ${route.path}`) || route.path.endsWith('/bundle');
      for (const [name, headers] of Object.entries(forged)) {
        const res = await send(route, headers);
        figures.tally('routeAnswers', String(res.status));
        figures.add('routeRequests');
        const ok = protectedRoute ? res.status === 401 || res.status === 403 : res.status < 500;
        if (!ok) problems.push(`${route.method} ${route.path} (${name}): ${res.status} ${res.body.toString().slice(0, 120)}`);
      }
    }
    figures.set('routes', routes.length);
    expect(problems).toEqual([]);
    const rows = await sql<{ n: string }>(server.databaseUrl!, `SELECT count(*) AS n FROM deliveries`);
    expect(Number(rows[0].n)).toBe(1);
  });

  test('cookie-authenticated writes from another origin are refused and change nothing', async () => {
    const target = await upload(server, 'keep.bin', randomBytes(1000));
    const writes: { name: string; headers: Record<string, string> }[] = [
      { name: 'cross-site fetch', headers: { 'sec-fetch-site': 'cross-site', origin: 'http://evil.example' } },
      { name: 'same-site (another subdomain)', headers: { 'sec-fetch-site': 'same-site', origin: 'http://a.127.0.0.1.nip.io' } },
      { name: 'other Origin, no Sec-Fetch-Site', headers: { origin: 'http://evil.example' } },
      { name: 'Origin null', headers: { origin: 'null' } },
      { name: 'no Origin, no CSRF header', headers: {} },
      { name: 'Referer only', headers: { referer: `${server.url}/admin` } },
    ];
    for (const { name, headers } of writes) {
      const remove = await rawHttp(`${server.url}/api/contents/${target.id}`, 'DELETE', { cookie: sessionCookie, ...headers });
      const hook = await rawHttp(
        `${server.url}/api/webhooks`,
        'POST',
        { cookie: sessionCookie, 'content-type': 'application/json', ...headers },
        JSON.stringify({ url: 'http://127.0.0.1:9/hook' }),
      );
      expect([name, remove.status, hook.status]).toEqual([name, 403, 403]);
      figures.add('crossOriginWritesRefused', 2);
    }
    expect((await server.admin(`/api/contents/${target.id}`)).status).toBe(200);
    expect(await (await server.admin('/api/webhooks')).json()).toEqual([]);
    // The same cookie with the CSRF header does write: the refusals above were about the origin.
    const allowed = await rawHttp(`${server.url}/api/contents/${target.id}`, 'DELETE', { cookie: sessionCookie, 'x-dcx-csrf': '1' });
    expect(allowed.status).toBe(204);
  });

  test('upload names built for header injection come back as one safe Content-Disposition', async () => {
    const names = [
      'a"; filename="evil.exe',
      'x\r\nSet-Cookie: pwned=1',
      'x\nX-Injected: 1',
      "quote'n\\back.pdf",
      'résumé 日本語.pdf',
      '%0d%0aSet-Cookie:%20a=b.txt',
      "a;b=c;filename*=UTF-8''evil.exe",
      '\u0000null.bin',
      `${'long'.repeat(300)}.bin`,
      '=cmd|calc.csv',
    ];
    for (const name of names) {
      const { body, contentType } = multipart(name, randomBytes(100));
      const created = await rawHttp(
        `${server.url}/api/contents`,
        'POST',
        { authorization: `Bearer ${server.adminToken}`, 'content-type': contentType },
        body,
      );
      figures.tally('hostileUploadNames', String(created.status));
      expect([name, created.status < 500]).toEqual([name, true]);
      if (created.status !== 201) continue;
      const { id } = JSON.parse(created.body.toString()) as { id: string };
      const bundle = await rawHttp(`${server.url}/api/contents/${id}/bundle`);
      expect([name, bundle.status]).toEqual([name, 200]);
      const disposition = bundle.headers['content-disposition'];
      expect(typeof disposition).toBe('string');
      expect(String(disposition)).not.toMatch(/[\r\n\0]/);
      expect(bundle.headers['set-cookie']).toBeUndefined();
      expect(bundle.headers['x-injected']).toBeUndefined();
      const parsed = contentDisposition.parse(String(disposition));
      expect([name, parsed.type]).toEqual([name, 'attachment']);
      expect(String(parsed.parameters['filename*'] ?? parsed.parameters.filename)).toMatch(/\.dcx$/);
      expect(String(parsed.parameters.filename ?? '')).not.toMatch(/["\\/]/);
    }
  });

  test('uploads over MAX_UPLOAD_BYTES are refused (413) and leave nothing behind', async () => {
    const before = (await (await server.admin('/api/contents')).json()) as unknown[];
    for (const size of [MAX_UPLOAD + 1, MAX_UPLOAD * 3]) {
      const { body, contentType } = multipart('too-big.bin', randomBytes(size));
      const res = await rawHttp(
        `${server.url}/api/contents`,
        'POST',
        { authorization: `Bearer ${server.adminToken}`, 'content-type': contentType },
        body,
      ).catch((error: Error): RawResponse => ({ status: -1, body: Buffer.from(error.message), headers: {} }));
      // The server may close the connection while the body still comes: then the client sees a reset.
      expect([size, res.status === 413 || res.status === -1]).toEqual([size, true]);
      figures.tally('oversizeUploads', String(res.status));
    }
    const after = (await (await server.admin('/api/contents')).json()) as unknown[];
    expect(after.length).toBe(before.length);
    expect((await files(server.dataDir)).filter((f) => f.size > MAX_UPLOAD)).toEqual([]);
  });

  test('hostile Range headers: 200, 206 or 416 with consistent bytes (431 for a header over the limit of Node); never 500', async () => {
    const headers = { 'dcx-access-token': tokenContent.accessToken! };
    const whole = await rawHttp(`${server.url}/api/deliveries/${deliveryOfToken}/bundle`, 'GET', headers);
    expect(whole.status).toBe(200);
    const size = whole.body.length;
    const ranges = [
      `bytes=${Array.from({ length: 2000 }, (_, i) => `${i}-${i}`).join(',')}`,
      'bytes=0-0,0-0,0-0',
      'bytes=-0',
      'bytes=-1',
      `bytes=-${size * 2}`,
      'bytes=-99999999999999999999999',
      'bytes=5-1',
      'bytes=99999999999999999999-',
      'bytes=0-18446744073709551616',
      `bytes=${size}-`,
      `bytes=${size - 1}-`,
      'bytes=-5-10',
      'bytes=1e3-2e3',
      'bytes=0x10-0x20',
      'bytes= 1 - 2 ',
      'bytes=abc',
      'items=0-1',
      'bytes=',
      `bytes=0-${'9'.repeat(4000)}`,
      'bytes=0-1\u0000',
    ];
    for (const range of ranges) {
      const res = await rawHttp(`${server.url}/api/deliveries/${deliveryOfToken}/bundle`, 'GET', { ...headers, range }).catch(
        (error: Error): RawResponse => ({ status: -1, body: Buffer.from(error.message), headers: {} }),
      );
      figures.tally('rangeAnswers', String(res.status));
      const label = range.slice(0, 40);
      if (res.status === -1) {
        // Node's own HTTP client refuses to send an invalid header value (the NUL): nothing reached the server.
        expect(res.body.toString()).toMatch(/Invalid character/);
        continue;
      }
      expect([label, [200, 206, 400, 416, 431].includes(res.status)]).toEqual([label, true]);
      if (res.status === 200) expect([label, res.body.equals(whole.body)]).toEqual([label, true]);
      if (res.status === 206) {
        const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range']));
        expect([label, match !== null]).toEqual([label, true]);
        const [first, last, total] = match!.slice(1).map(Number);
        expect([label, total, res.body.equals(whole.body.subarray(first, last + 1))]).toEqual([label, size, true]);
      }
      if (res.status === 416) expect(res.headers['content-range']).toBe(`bytes */${size}`);
    }
    figures.set('rangeHeaders', ranges.length);
  });

  test('X-Forwarded-For with TRUST_PROXY unset changes nothing: the requester is the TCP peer', async () => {
    const publicContent = await upload(server, 'xff.bin', randomBytes(1000));
    const { bytes, deliveryId } = await fetchBundle(server.url, publicContent.id, {
      'x-forwarded-for': '203.0.113.9, 198.51.100.7',
      forwarded: 'for=203.0.113.9',
    });
    expect(openPluginData(pluginRecordOf(bytes), {}).data.client.address).toBe('127.0.0.1');
    const rows = await sql<{ requester_ip: string }>(server.databaseUrl!, `SELECT requester_ip FROM deliveries WHERE id = $1`, [
      deliveryId,
    ]);
    expect(rows[0].requester_ip).toBe('127.0.0.1');
  });

  test('a flood of bundle requests for a token content without its token creates no delivery row', async () => {
    const requests = scale(2000, 20_000);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const variants = [
      (): Record<string, string> => ({}),
      (): Record<string, string> => ({ 'dcx-access-token': randomBytes(24).toString('base64url') }),
      (): Record<string, string> => ({ 'dcx-access-token': tokenContent.accessToken!.slice(0, -1) }),
      (): Record<string, string> => ({ 'dcx-access-token': '' }),
    ];
    const statuses = await inParallel(Array.from({ length: requests }), 16, (_, i) => {
      const query = i % 5 === 0 ? `?access=${randomBytes(12).toString('hex')}` : '';
      return new Promise<number>((resolve, reject) => {
        const req = request(
          `${server.url}/api/contents/${tokenContent.id}/bundle${query}`,
          { agent, headers: variants[i % variants.length]() },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });
    });
    agent.destroy();
    for (const s of statuses) figures.tally('tokenlessBundleAnswers', String(s));
    figures.set('tokenlessBundleRequests', requests);
    expect(statuses.filter((s) => s !== 401 && s !== 403)).toEqual([]);
    const rows = await sql<{ n: string }>(server.databaseUrl!, `SELECT count(*) AS n FROM deliveries WHERE content_id = $1`, [
      tokenContent.id,
    ]);
    // Only the delivery fetched with the token in beforeAll.
    expect(Number(rows[0].n)).toBe(1);
    figures.set('deliveryRowsCreatedByTokenlessRequests', Number(rows[0].n) - 1);
  });
});
