import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { accessLog } from '../http/access-log.js';
import { createRootLogger, PinoNestLogger, REDACTED, redactUrl, rootLoggerOptions } from './logging.js';

describe('log redaction', () => {
  test('credential query values are replaced, other parameters kept', () => {
    expect(redactUrl('/api/contents/1/bundle?access=s3cret-value')).toBe(`/api/contents/1/bundle?access=${REDACTED}`);
    expect(redactUrl('/x?page=2&access=abc&pageSize=5')).toBe(`/x?page=2&access=${REDACTED}&pageSize=5`);
    expect(redactUrl('/x?access_token=abc&Token=def&id_token=ghi#frag')).toBe(
      `/x?access_token=${REDACTED}&Token=${REDACTED}&id_token=${REDACTED}#frag`,
    );
    expect(redactUrl('/x?accessible=yes&status=sent')).toBe('/x?accessible=yes&status=sent');
    expect(redactUrl('/api/deliveries')).toBe('/api/deliveries');
    // Names as the server decodes them: a percent-encoded or plus-spaced name is still that name.
    expect(redactUrl('/x?%61ccess=abc&my%20Token=def&a+token=ghi&%zz=keep')).toBe(
      `/x?%61ccess=${REDACTED}&my%20Token=${REDACTED}&a+token=${REDACTED}&%zz=keep`,
    );
  });

  test('the root logger blanks every credential header, query value and credential field', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    const logger = createRootLogger(sink);
    logger.info(
      {
        req: {
          method: 'GET',
          url: '/api/contents/1/bundle?access=url-secret&page=2',
          headers: {
            authorization: 'Bearer admin-secret',
            cookie: 'sid=cookie-secret',
            'dcx-access-token': 'header-secret',
            'proxy-authorization': 'Basic proxy-secret',
            'user-agent': 'curl/8',
          },
          query: { access: 'query-secret', page: '2' },
        },
        res: { statusCode: 200, headers: { 'set-cookie': 'sid=set-secret', 'content-type': 'text/plain' } },
        accessToken: 'field-secret',
        token: 'token-secret',
        deliveryId: 'd1',
      },
      'a request',
    );
    // A plain object that looks like an access line already (no headers) still loses its query.
    logger.info({ req: { url: '/x', query: { access: 'plain-secret' } } }, 'plain');
    const text = lines.join('');
    for (const secret of [
      'url-secret',
      'admin-secret',
      'cookie-secret',
      'header-secret',
      'proxy-secret',
      'query-secret',
      'set-secret',
      'field-secret',
      'token-secret',
      'plain-secret',
    ]) {
      expect(text).not.toContain(secret);
    }
    const [first, second] = lines.map((line) => JSON.parse(line) as { req?: unknown; res?: unknown });
    expect(first.req).toEqual({ method: 'GET', url: `/api/contents/1/bundle?access=${REDACTED}&page=2`, userAgent: 'curl/8' });
    expect(first.res).toEqual({ statusCode: 200 });
    expect(first).toMatchObject({ accessToken: REDACTED, token: REDACTED, deliveryId: 'd1' });
    expect(second.req).toEqual({ url: '/x' });
  });

  test('the root logger redacts top-level credential fields by name, with no wildcard path (one costs every field of every line)', () => {
    const options = rootLoggerOptions() as { redact: { paths: string[]; censor: string } };
    expect(options.redact.paths).toEqual(expect.arrayContaining(['accessToken', 'token', 'authorization']));
    expect(options.redact.paths.filter((path) => path.includes('*'))).toEqual([]);
    expect(options.redact.censor).toBe(REDACTED);
  });

  test(
    'the completed-request line keeps access-log fields and the request id, never headers, ' + 'and blanks credential query values',
    async () => {
      const lines: Record<string, unknown>[] = [];
      const sink = new Writable({
        write: (chunk, _encoding, done) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()),
      });
      const log = accessLog(createRootLogger(sink));
      const server = createServer((req, res) => {
        req.headers['x-request-id'] = 'r1';
        log(req, res);
        if (req.url?.startsWith('/api/contents/1/bundle')) res.setHeader('content-length', '5').end('bytes');
        else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'no' }));
      });
      try {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        await (
          await fetch(`${base}/api/contents/1/bundle?access=s3cret`, {
            headers: { authorization: 'Bearer admin-secret', cookie: 'sid=x', 'user-agent': 'curl/8' },
          })
        ).text();
        await (await fetch(`${base}/missing`)).text();
        await new Promise((resolve) => setImmediate(resolve)); // the access line is written when the response has finished
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
      expect(lines.some((line) => line.msg === 'incoming request')).toBe(false); // one line per request
      const [ok, missing] = lines.filter((line) => line.msg === 'request completed');
      expect(ok).toMatchObject({
        level: 30,
        reqId: 'r1',
        req: { id: 'r1', method: 'GET', url: `/api/contents/1/bundle?access=${REDACTED}`, remoteAddress: '127.0.0.1', userAgent: 'curl/8' },
        res: { statusCode: 200, contentLength: '5' },
      });
      expect(JSON.stringify(ok)).not.toMatch(/admin-secret|sid=x|s3cret/);
      expect(missing).toMatchObject({ level: 40, res: { statusCode: 404 } });
    },
  );

  test("Nest's logger lines are pino lines with their context; errors keep their stack", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write: (chunk, _encoding, done) => (lines.push(JSON.parse(String(chunk)) as Record<string, unknown>), done()),
    });
    const root = createRootLogger(sink);
    const logger = new PinoNestLogger(root);
    logger.log('started', 'DCX');
    logger.warn({ deliveryId: 'd1', token: 'secret' }, 'Bundles');
    logger.error('failed', 'Error: failed\n    at x (y.js:1:1)', 'Webhooks');
    logger.debug('not shown at info', 'DCX');
    root.level = 'debug';
    logger.debug('shown at debug', 'DCX');
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, context: 'DCX', msg: 'started' }),
      expect.objectContaining({ level: 40, context: 'Bundles', deliveryId: 'd1', token: REDACTED }),
      expect.objectContaining({ level: 50, context: 'Webhooks', msg: 'failed', stack: 'Error: failed\n    at x (y.js:1:1)' }),
      expect.objectContaining({ level: 20, context: 'DCX', msg: 'shown at debug' }),
    ]);
  });
});
