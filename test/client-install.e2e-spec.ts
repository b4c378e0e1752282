import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dcx, newClientHome, runDcx } from './support/cli-process.js';
import { ROOT, RunningServer, startServer } from './support/server-process.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The client as a recipient installs it, without this repository: the npm package from `npm run build:client`
 * installed with `npm i -g` into its own prefix (offline: it has no dependencies to download), and the single
 * executable. Each fetches, saves and confirms a real delivery.
 */
describe('the dcx client installed on its own', () => {
  let server: RunningServer;
  let bundleUrl: string;
  let original: Buffer;
  let installed: string;
  const singleExecutable = join(ROOT, 'dist/sea/dcx');

  beforeAll(async () => {
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-client.mjs'), '--sea'], { stdio: 'pipe' });
    const packDir = await mkdtemp(join(tmpdir(), 'dcx-pack-'));
    const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: join(ROOT, 'dist/client-package') })
      .toString()
      .trim();
    const prefix = await mkdtemp(join(tmpdir(), 'dcx-prefix-'));
    execFileSync('npm', ['install', '--global', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', join(packDir, tarball)], {
      stdio: 'pipe',
    });
    installed = join(prefix, 'bin', 'dcx');

    server = await startServer('pglite');
    const work = await mkdtemp(join(tmpdir(), 'dcx-install-'));
    original = randomBytes(200_000);
    await writeFile(join(work, 'manual.pdf'), original);
    const published = await dcx(['publish', join(work, 'manual.pdf'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    bundleUrl = (JSON.parse(published.stdout) as { bundleUrl: string }).bundleUrl;
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it.each([
    ['the npm package (npm i -g)', () => [installed]],
    ['the single executable', () => [singleExecutable]],
  ])(
    '%s says its version, fetches, saves and confirms',
    async (_what, command) => {
      const version = await runDcx(command(), ['--version'], {});
      const { version: expected } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
      expect(version.stdout.trim()).toBe(expected);

      const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
      const fetched = await runDcx(command(), ['fetch', bundleUrl, '--out', out, '--json'], { DCX_HOME: await newClientHome() });
      expect(fetched.stderr).toMatch(/pinned/);
      expect(fetched.code).toBe(0);
      const report = JSON.parse(fetched.stdout) as { deliveryId: string; status: string };
      expect(await readdir(out)).toEqual(['manual.pdf']);
      expect(sha256(await readFile(join(out, 'manual.pdf')))).toBe(sha256(original));
      const delivery = (await (await server.admin(`/api/deliveries/${report.deliveryId}`)).json()) as { status: string };
      expect(delivery.status).toBe('confirmed');
    },
    60_000,
  );

  it('the package holds one file and no dependency to download', async () => {
    const manifest = JSON.parse(await readFile(join(ROOT, 'dist/client-package/package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ name: 'dcx-client', bin: { dcx: 'dcx.mjs' } });
    expect(manifest.private).toBeUndefined();
    expect(manifest.dependencies).toBeUndefined();
  });
});
