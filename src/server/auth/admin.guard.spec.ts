import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecutionContext, UnauthorizedException } from '@nestjs/common';
import { loadAppConfig } from '../config/app-config.js';
import { AdminGuard } from './admin.guard.js';
import { AdminTokenService } from './admin-token.service.js';

function httpContext(authorization: string | undefined) {
  const headers = new Map<string, string>();
  const context = {
    switchToHttp: () => ({
      getRequest: () => ({ headers: authorization === undefined ? {} : { authorization } }),
      getResponse: () => ({ setHeader: (name: string, value: string) => headers.set(name, value) }),
    }),
  } as unknown as ExecutionContext;
  return { context, headers };
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
    const service = new AdminTokenService(loadAppConfig({ DATA_DIR: dir, ADMIN_TOKEN: 'an-admin-token-from-env' }));
    await service.onModuleInit();
    const guard = new AdminGuard(service);

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
});
