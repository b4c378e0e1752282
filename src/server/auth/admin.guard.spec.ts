import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionContext, ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { loadAppConfig } from '../config/app-config.js';
import { AdminGuard } from './admin.guard.js';
import { AdminSessionService, SESSION_COOKIE, SESSION_TTL_SECONDS } from './admin-session.service.js';
import { AdminTokenService } from './admin-token.service.js';

interface FakeRequest {
  method?: string;
  headers?: Record<string, string>;
  cookies?: Record<string, string>;
  protocol?: string;
}

function httpContext(authorization: string | undefined, request: FakeRequest = {}) {
  const headers = new Map<string, string>();
  const cookie =
    request.cookies &&
    Object.entries(request.cookies)
      .map(([name, value]) => `${name}=${value}`)
      .join('; ');
  const requestHeaders = {
    ...(request.headers ?? {}),
    ...(authorization === undefined ? {} : { authorization }),
    ...(cookie === undefined ? {} : { cookie }),
  };
  const context = {
    switchToHttp: () => ({
      getRequest: () => ({ ...request, headers: requestHeaders }),
      getResponse: () => ({ setHeader: (name: string, value: string) => headers.set(name, value) }),
    }),
  } as unknown as ExecutionContext;
  return { context, headers };
}

async function guardFor(dir: string, adminToken = 'an-admin-token-from-env') {
  const config = loadAppConfig({ DATA_DIR: dir, ADMIN_TOKEN: adminToken, PUBLIC_URL: 'https://dcx.example' });
  const tokens = new AdminTokenService(config);
  await tokens.onModuleInit();
  const sessions = new AdminSessionService(tokens, config);
  return { tokens, sessions, guard: new AdminGuard(tokens, sessions) };
}

describe('admin token and AdminGuard', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-auth-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a token is generated once into DATA_DIR/admin-token (0600) and reused', async () => {
    const config = loadAppConfig({ DATA_DIR: dir });
    const first = new AdminTokenService(config);
    await first.onModuleInit();
    const token = (await readFile(config.adminTokenFile, 'utf8')).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(config.adminTokenFile)).mode & 0o777).toBe(0o600);
    expect(first.describeSource()).toBe(config.adminTokenFile);

    const second = new AdminTokenService(config);
    await second.onModuleInit();
    expect((await readFile(config.adminTokenFile, 'utf8')).trim()).toBe(token);
    expect(second.verify(token)).toBe(true);
    expect(second.verify(`${token}x`)).toBe(false);
  });

  test('ADMIN_TOKEN wins and no file is written', async () => {
    const config = loadAppConfig({ DATA_DIR: dir, ADMIN_TOKEN: 'an-admin-token-from-env' });
    const service = new AdminTokenService(config);
    await service.onModuleInit();
    expect(service.describeSource()).toBe('ADMIN_TOKEN (environment)');
    await expect(stat(config.adminTokenFile)).rejects.toThrow();
    expect(service.verify('an-admin-token-from-env')).toBe(true);
  });

  test('the guard accepts the right bearer token and answers 401 with WWW-Authenticate otherwise', async () => {
    const { guard } = await guardFor(dir);

    expect(guard.canActivate(httpContext('Bearer an-admin-token-from-env').context)).toBe(true);
    expect(guard.canActivate(httpContext('bearer   an-admin-token-from-env').context)).toBe(true);

    for (const [header, expected] of [
      [undefined, 'Bearer realm="dcx"'],
      ['Basic YWRtaW46eA==', 'Bearer realm="dcx"'],
      ['Bearer', 'Bearer realm="dcx"'],
      ['Bearer wrong-token', 'Bearer realm="dcx", error="invalid_token"'],
      ['Bearer an-admin-token-from-env2', 'Bearer realm="dcx", error="invalid_token"'],
    ] as const) {
      const { context, headers } = httpContext(header);
      expect(() => guard.canActivate(context)).toThrow(UnauthorizedException);
      expect(headers.get('WWW-Authenticate')).toBe(expected);
    }
  });

  test('a session value is signed, expires, and is bound to the admin token', async () => {
    const { sessions } = await guardFor(dir);
    const now = new Date('2026-11-23T12:00:00Z');
    const { value, expiresAt } = sessions.issue(now);
    expect(value).toMatch(/^v1\.\d+\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(value).not.toContain('an-admin-token-from-env');
    expect(expiresAt.getTime() - now.getTime()).toBe(SESSION_TTL_SECONDS * 1000);
    expect(sessions.verify(value, now)).toEqual(expiresAt);
    expect(sessions.verify(value, new Date(expiresAt.getTime() + 1000))).toBeNull();

    // A later expiry with the old MAC, a flipped MAC, and garbage are all refused.
    const [version, expiry, nonce, mac] = value.split('.');
    expect(sessions.verify([version, Number(expiry) + 3600, nonce, mac].join('.'), now)).toBeNull();
    expect(sessions.verify([version, expiry, nonce, `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`].join('.'), now)).toBeNull();
    expect(sessions.verify([version, expiry, nonce, `${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`].join('.'), now)).toBeNull();
    for (const bad of [undefined, '', 'an-admin-token-from-env', 'v1..x.y']) expect(sessions.verify(bad, now)).toBeNull();

    // Another replica with the same token accepts it; a server with another token does not.
    expect((await guardFor(dir)).sessions.verify(value, now)).toEqual(expiresAt);
    expect((await guardFor(dir, 'another-admin-token-123')).sessions.verify(value, now)).toBeNull();
  });

  test('the guard accepts the session cookie for reads, and for writes only from the same origin', async () => {
    const { guard, sessions } = await guardFor(dir);
    const cookies = { [SESSION_COOKIE]: sessions.issue().value };

    expect(guard.canActivate(httpContext(undefined, { method: 'GET', cookies }).context)).toBe(true);
    for (const headers of <Record<string, string>[]>[
      { 'sec-fetch-site': 'same-origin' },
      { origin: 'https://dcx.example' },
      { origin: 'http://127.0.0.1:8080', host: '127.0.0.1:8080' },
      { 'x-dcx-csrf': '1' },
    ]) {
      expect(guard.canActivate(httpContext(undefined, { method: 'POST', cookies, headers, protocol: 'http' }).context)).toBe(true);
    }
    for (const [method, headers] of [
      ['POST', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }],
      ['DELETE', { 'sec-fetch-site': 'same-site' }],
      ['POST', { 'sec-fetch-site': 'cross-site', 'x-dcx-csrf': '1' }],
      ['PUT', { origin: 'https://evil.example', host: 'dcx.example' }],
      ['POST', { origin: 'null' }],
      ['DELETE', {}],
    ] as const) {
      const { context } = httpContext(undefined, { method, cookies, headers, protocol: 'https' });
      expect(() => guard.canActivate(context)).toThrow(ForbiddenException);
    }
  });

  test('a bad or expired cookie is a 401, and a wrong bearer token is not rescued by a good cookie', async () => {
    const { guard, sessions } = await guardFor(dir);
    const expired = sessions.issue(new Date(Date.now() - (SESSION_TTL_SECONDS + 60) * 1000)).value;
    for (const value of [expired, 'forged', (await guardFor(dir, 'another-admin-token-123')).sessions.issue().value]) {
      const { context, headers } = httpContext(undefined, { method: 'GET', cookies: { [SESSION_COOKIE]: value } });
      expect(() => guard.canActivate(context)).toThrow(UnauthorizedException);
      expect(headers.get('WWW-Authenticate')).toBe('Bearer realm="dcx"');
    }
    const good = { [SESSION_COOKIE]: sessions.issue().value };
    expect(() => guard.canActivate(httpContext('Bearer wrong-token', { method: 'GET', cookies: good }).context)).toThrow(
      UnauthorizedException,
    );
  });
});
