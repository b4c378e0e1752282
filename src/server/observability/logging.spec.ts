import { Writable } from 'node:stream';
import pino from 'pino';
import { loadAppConfig } from '../config/app-config.js';
import { accessLogSerializers, loggerParams, REDACT_PATHS, REDACTED, redactUrl } from './logging.js';

describe('log redaction', () => {
  test('credential query values are replaced, other parameters kept', () => {
    expect(redactUrl('/api/contents/1/bundle?access=s3cret-value')).toBe(`/api/contents/1/bundle?access=${REDACTED}`);
    expect(redactUrl('/x?page=2&access=abc&pageSize=5')).toBe(`/x?page=2&access=${REDACTED}&pageSize=5`);
    expect(redactUrl('/x?access_token=abc&Token=def&id_token=ghi#frag')).toBe(`/x?access_token=${REDACTED}&Token=${REDACTED}&id_token=${REDACTED}#frag`);
    expect(redactUrl('/x?accessible=yes&status=sent')).toBe('/x?accessible=yes&status=sent');
    expect(redactUrl('/api/deliveries')).toBe('/api/deliveries');
  });

  test('pino with these paths blanks every credential header, query value and token field', () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) });
    const logger = pino({ redact: { paths: [...REDACT_PATHS], censor: REDACTED } }, sink);
    logger.info(
      {
        req: {
          headers: { authorization: 'Bearer admin-secret', cookie: 'sid=cookie-secret', 'dcx-access-token': 'header-secret', 'proxy-authorization': 'Basic proxy-secret', accept: '*/*' },
          query: { access: 'query-secret', page: '2' },
        },
        res: { headers: { 'set-cookie': 'sid=set-secret', 'content-type': 'text/plain' } },
        accessToken: 'field-secret',
        content: { accessToken: 'nested-secret', name: 'movie.mp4' },
      },
      'a request',
    );
    const line = lines.join('');
    for (const secret of ['admin-secret', 'cookie-secret', 'header-secret', 'proxy-secret', 'query-secret', 'set-secret', 'field-secret', 'nested-secret']) {
      expect(line).not.toContain(secret);
    }
    const parsed = JSON.parse(line);
    expect(parsed.req.headers.accept).toBe('*/*');
    expect(parsed.req.query.page).toBe('2');
    expect(parsed.content.name).toBe('movie.mp4');
    expect(parsed.req.headers.authorization).toBe(REDACTED);
  });

  test('the logger options follow LOG_LEVEL and redact', () => {
    const params = loggerParams(loadAppConfig({ LOG_LEVEL: 'warn' }, '/'));
    const options = params.pinoHttp as { level: string; redact: { paths: string[] } };
    expect(options.level).toBe('warn');
    expect(options.redact.paths).toEqual(expect.arrayContaining(['req.headers.authorization', 'req.query.access']));
  });

  test('the completed-request line keeps access-log fields, never headers, and blanks credential query values', () => {
    const req = accessLogSerializers.req({
      id: 'r1',
      method: 'GET',
      url: '/api/contents/1/bundle?access=s3cret',
      headers: { authorization: 'Bearer admin-secret', cookie: 'sid=x', 'user-agent': 'curl/8' },
      remoteAddress: '127.0.0.1',
    });
    expect(req).toEqual({ id: 'r1', method: 'GET', url: `/api/contents/1/bundle?access=${REDACTED}`, remoteAddress: '127.0.0.1', userAgent: 'curl/8' });
    const res = accessLogSerializers.res({ statusCode: 200, headers: { 'set-cookie': 'sid=secret', 'content-length': '10884' } });
    expect(res).toEqual({ statusCode: 200, contentLength: '10884' });
  });
});
