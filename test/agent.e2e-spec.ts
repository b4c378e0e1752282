// Issue 16, "what a user does" and "faults it survives": the real server on PostgreSQL, the real `dcx agent` as
// processes. The server's confirmation port listens on 127.0.0.2 while its plug-in data names 127.0.0.1, so the
// TCP port cannot be reached: every confirmation in this file travels over HTTPS (the ack, or the outbox).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { dcx, newClientHome, publish } from './support/cli-process.js';
import { until } from './support/eventually.js';
import { runTool } from '../src/client/agent/host-tools.js';
import { iniSection } from './support/ini.js';
import { adminJson, AgentProcess, enrolledInstallation } from './support/agent-process.js';
import { RestartableServer, startRestartable } from './support/restartable-server.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const TEST_HEARTBEAT = '500ms';
/** The server's suggested reconnect delay: short, so that a restart is waited out in seconds. */
const TEST_RECONNECT_MS = 1000;
const SHORT_LEASE_SECONDS = 10;
const PAUSE_ENV = 'DCX_AGENT_TEST_PAUSE_BEFORE_ACK';

describe('dcx agent, end to end (postgres, TCP confirmation port unreachable)', () => {
  let server: RestartableServer;
  let db: pg.Client;
  let work: string;
  const contents: { id: string; name: string; bytes: Buffer }[] = [];
  const agents: AgentProcess[] = [];

  const startAgent = (home: string, out: string, extra: string[] = [], env: Record<string, string> = {}) => {
    const agent = new AgentProcess([server.url, '--out', out, ...extra], { DCX_HOME: home, ...env });
    agents.push(agent);
    return agent;
  };
  const distribute = (contentId: string, recipients: string[]) =>
    adminJson<{ id: string }>(server, '/api/distributions', { contentId, recipients });
  const deliveryOf = async (recipientId: string, contentId: string) =>
    (
      await db.query<{ id: string; status: string }>(
        `SELECT id, status FROM deliveries WHERE recipient_id = $1 AND content_id = $2 ORDER BY issued_at DESC LIMIT 1`,
        [recipientId, contentId],
      )
    ).rows[0];
  const confirmations = async (deliveryId: string) =>
    (await db.query(`SELECT 1 FROM delivery_events WHERE delivery_id = $1 AND type = 'confirmed'`, [deliveryId])).rowCount;

  beforeAll(async () => {
    server = await startRestartable('postgres', {
      INBOX_HEARTBEAT: TEST_HEARTBEAT,
      INBOX_RECONNECT_MS: String(TEST_RECONNECT_MS),
      CONFIRM_BIND_HOST: '127.0.0.2',
    });
    // The premise of this file: the port the plug-in data names (127.0.0.1) refuses TCP.
    await expect(
      new Promise((resolve, reject) => connect(server.confirmPort, '127.0.0.1').once('connect', resolve).once('error', reject)),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    db = new pg.Client({ connectionString: server.databaseUrl! });
    await db.connect();
    work = await mkdtemp(join(tmpdir(), 'dcx-agent-e2e-'));
    for (const name of ['policy.pdf', 'handbook.pdf', 'slides.pdf']) {
      const bytes = randomBytes(20_000 + contents.length * 7000);
      await writeFile(join(work, name), bytes);
      contents.push({ ...(await publish(server, join(work, name), 'public')), bytes });
    }
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.kill('SIGKILL')));
    await db?.end();
    await server?.stop();
  });

  test('three contents distributed: all saved and confirmed once each, one log line each; `dcx status` while running and after', async () => {
    const { home, recipientId } = await enrolledInstallation(server, 'Ada');
    const out = await mkdtemp(join(tmpdir(), 'dcx-agent-out-'));
    const agent = startAgent(home, out);
    await agent.line(/connected to/);

    for (const content of contents) await distribute(content.id, [recipientId]);
    for (let n = 1; n <= 3; n++) await agent.line(/ confirmed /, n, 30_000, 'stdout');

    expect((await readdir(out)).sort()).toEqual(['handbook.pdf', 'policy.pdf', 'slides.pdf']);
    for (const content of contents) {
      expect(sha256(await readFile(join(out, content.name)))).toBe(sha256(content.bytes));
      const delivery = await deliveryOf(recipientId, content.id);
      expect(delivery.status).toBe('confirmed');
      expect(await confirmations(delivery.id)).toBe(1);
      expect(agent.matching(new RegExp(`${content.name.replace('.', '\\.')}`), 'stdout')).toHaveLength(1);
      expect(existsSync(join(home, 'receipts', `${delivery.id}.receipt`))).toBe(true);
    }
    expect(agent.stdout.map((l) => l.text)).toEqual(
      contents.map(() => expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z confirmed \S+\.pdf: .* \(delivery [0-9a-f-]{36}\)$/)),
    );

    const running = await dcx(['status', '--json'], { DCX_HOME: home });
    expect([running.code, running.stderr]).toEqual([0, '']);
    const report = JSON.parse(running.stdout) as { agent: Record<string, unknown>; outbox: unknown[] };
    expect(report.agent).toMatchObject({ running: true, connected: true, pid: agent.pid, server: server.url, out });
    expect(report.agent.lastContactAt).toEqual(expect.any(String));
    expect(report.agent.lastDelivery).toMatchObject({ status: 'confirmed' });
    expect(report.outbox).toEqual([]);
    expect((await dcx(['status'], { DCX_HOME: home })).stdout).toMatch(
      /^agent: running \(pid \d+\) since .*\n {2}server {10}http:\S+ \(connected\)/,
    );

    expect(await agent.kill('SIGTERM')).toBe(143);
    expect((await readdir(out)).sort()).toEqual(['handbook.pdf', 'policy.pdf', 'slides.pdf']);
    const after = JSON.parse((await dcx(['status', '--json'], { DCX_HOME: home })).stdout) as typeof report;
    expect(after.agent).toMatchObject({ running: false, connected: false, stoppedAt: expect.any(String) });
    expect((await dcx(['status'], { DCX_HOME: home })).stdout).toMatch(/^agent: not running/);
  });

  test('kill -9 after saving, before the ack → restart: no second copy, the confirmation goes out (from the outbox), one confirmation', async () => {
    const { home, recipientId } = await enrolledInstallation(server, 'Blaise');
    const out = await mkdtemp(join(tmpdir(), 'dcx-agent-out-'));
    const release = join(work, `release-${randomBytes(4).toString('hex')}`);
    const agent = startAgent(home, out, [], { [PAUSE_ENV]: release });
    await agent.line(/connected to/);
    await distribute(contents[0].id, [recipientId]);
    await agent.line(/paused before the ack/);
    expect(await readdir(out)).toEqual(['policy.pdf']);
    expect(await readdir(join(home, 'outbox'))).toHaveLength(1);
    await agent.kill('SIGKILL');
    const delivery = await deliveryOf(recipientId, contents[0].id);
    expect(await confirmations(delivery.id)).toBe(0);

    const restarted = startAgent(home, out);
    await restarted.line(/confirmed delivery [0-9a-f-]{36} \(from the outbox\)/, 1, 30_000, 'stdout');
    expect(await confirmations(delivery.id)).toBe(1);
    expect((await deliveryOf(recipientId, contents[0].id)).status).toBe('confirmed');
    expect(await readdir(out)).toEqual(['policy.pdf']);
    expect(await readdir(join(home, 'outbox'))).toEqual([]);
    expect(existsSync(join(home, 'receipts', `${delivery.id}.receipt`))).toBe(true);
    const status = JSON.parse((await dcx(['status', '--json'], { DCX_HOME: home })).stdout) as { outbox: unknown[] };
    expect(status.outbox).toEqual([]);
    await restarted.kill('SIGTERM');
  });

  test('a lease expired while the agent was suspended (SIGSTOP, SIGCONT): confirmed once, saved once', async () => {
    const { home, recipientId } = await enrolledInstallation(server, 'Carla');
    const out = await mkdtemp(join(tmpdir(), 'dcx-agent-out-'));
    const release = join(work, `release-${randomBytes(4).toString('hex')}`);
    const agent = startAgent(home, out, ['--lease-seconds', String(SHORT_LEASE_SECONDS)], { [PAUSE_ENV]: release });
    await agent.line(/connected to/);
    await distribute(contents[1].id, [recipientId]);
    await agent.line(/paused before the ack/);
    const delivery = await deliveryOf(recipientId, contents[1].id);
    agent.child.kill('SIGSTOP');
    await writeFile(release, '');
    // Past the lease: the server has given the delivery back to the inbox.
    await until(
      'the lease to expire',
      async () =>
        (await db.query(`SELECT 1 FROM inbox_leases WHERE delivery_id = $1 AND expires_at > now()`, [delivery.id])).rowCount === 0,
      (SHORT_LEASE_SECONDS + 20) * 1000,
    );
    agent.child.kill('SIGCONT');
    await agent.line(/ confirmed handbook\.pdf/, 1, 30_000, 'stdout');
    expect(await confirmations(delivery.id)).toBe(1);
    expect(await readdir(out)).toEqual(['handbook.pdf']);

    // Delivered again (a re-send of the same content): recognised, not saved as `handbook (1).pdf`.
    await distribute(contents[1].id, [recipientId]);
    await agent.line(/already saved, confirmed handbook\.pdf/, 1, 30_000, 'stdout');
    expect(await readdir(out)).toEqual(['handbook.pdf']);
    await agent.kill('SIGTERM');
  });

  test('`dcx agent --install --no-enable` and `--uninstall --no-enable` against a temp XDG_CONFIG_HOME: a valid unit, nothing enabled', async () => {
    const { home } = await enrolledInstallation(server, 'Dora');
    const xdg = await mkdtemp(join(tmpdir(), 'dcx-xdg-'));
    const out = join(work, 'dora inbox');
    const env = { DCX_HOME: home, XDG_CONFIG_HOME: join(xdg, 'config') };
    const installed = await dcx(['agent', '--install', '--no-enable', '--out', out], env);
    expect([installed.code, installed.stderr]).toEqual([0, '']);
    const unitFile = join(xdg, 'config', 'systemd', 'user', 'dcx-agent.service');
    expect(installed.stdout).toContain(`wrote the systemd user unit ${unitFile}`);
    expect(installed.stdout).toMatch(/not enabled \(--no-enable\)/);
    expect(installed.stdout).toMatch(/launchctl bootstrap gui/);
    expect(installed.stdout).toMatch(/schtasks \/Create/);
    const unit = await readFile(unitFile, 'utf8');
    const service = iniSection(unit, 'Service');
    // The server was left out: the only enrolment's origin is written in.
    expect(service.ExecStart).toBe(
      `${process.execPath} ${join(process.cwd(), 'dist/src/client/main.js')} agent ${server.url} --out "${out}"`,
    );
    expect(service.Environment).toBe(`DCX_HOME=${home}`);
    expect(iniSection(unit, 'Install').WantedBy).toBe('default.target');
    if (existsSync('/usr/bin/systemd-analyze')) {
      const verified = await runTool('systemd-analyze', ['verify', '--user', unitFile], { ...process.env, ...env });
      // verify needs a user manager to ask; where there is none it cannot say anything about the file.
      if (verified.ran && !verified.ok) expect(verified.error).not.toMatch(/dcx-agent\.service:\d+/);
    }

    const removed = await dcx(['agent', '--uninstall', '--no-enable'], env);
    expect([removed.code, removed.stdout]).toEqual([0, `removed the systemd user unit ${unitFile}\n`]);
    expect(existsSync(unitFile)).toBe(false);
  });

  test('`dcx register` against temp XDG dirs: a desktop entry and a MIME package the desktop tools accept; --uninstall', async () => {
    const xdg = await mkdtemp(join(tmpdir(), 'dcx-xdg-'));
    const env = { DCX_HOME: await newClientHome(), XDG_DATA_HOME: join(xdg, 'data'), XDG_CONFIG_HOME: join(xdg, 'config') };
    const registered = await dcx(['register', '--out', join(work, 'opened')], env);
    expect([registered.code, registered.stderr]).toEqual([0, '']);
    const desktopPath = join(xdg, 'data', 'applications', 'dcx.desktop');
    const mimePath = join(xdg, 'data', 'mime', 'packages', 'dcx.xml');
    expect(registered.stdout.split('\n').slice(0, 2)).toEqual([
      `wrote the desktop entry ${desktopPath}`,
      `wrote the MIME types ${mimePath} (*.dcx, *.dcxp)`,
    ]);
    // Each desktop tool either ran or is named as skipped.
    for (const tool of ['update-mime-database', 'update-desktop-database', 'xdg-mime']) {
      expect(registered.stdout).toMatch(new RegExp(`^(ran|skipped|failed): ${tool} `, 'm'));
    }

    const entry = iniSection(await readFile(desktopPath, 'utf8'), 'Desktop Entry');
    expect(entry).toMatchObject({
      Type: 'Application',
      Name: 'DCX',
      MimeType: 'application/vnd.dcx.bundle+zip;application/vnd.dcx.plugin;',
    });
    expect(entry.Exec).toMatch(/ open --out \S+opened %f$/);
    const validate = await runTool('desktop-file-validate', [desktopPath]);
    if (validate.ran) expect(validate).toEqual({ ran: true, ok: true });

    const xml = await readFile(mimePath, 'utf8');
    const types = [...xml.matchAll(/<mime-type type="([^"]+)">([\s\S]*?)<\/mime-type>/g)].map((m) => ({
      type: m[1],
      globs: [...m[2].matchAll(/<glob pattern="([^"]+)"/g)].map((g) => g[1]),
    }));
    expect(types).toEqual([
      { type: 'application/vnd.dcx.bundle+zip', globs: ['*.dcx'] },
      { type: 'application/vnd.dcx.plugin', globs: ['*.dcxp'] },
    ]);
    expect(xml).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<mime-info xmlns="http:\/\/www.freedesktop.org\/standards\/shared-mime-info">/,
    );
    if (registered.stdout.includes('ran: update-mime-database')) {
      // The database it built knows the type by its glob: the package parsed.
      expect(await readFile(join(xdg, 'data', 'mime', 'globs2'), 'utf8')).toMatch(/^60:application\/vnd\.dcx\.bundle\+zip:\*\.dcx$/m);
    }

    if (registered.stdout.includes('ran: xdg-mime default')) {
      expect(await readFile(join(xdg, 'config', 'mimeapps.list'), 'utf8')).toContain('application/vnd.dcx.bundle+zip=dcx.desktop');
    }

    const unregistered = await dcx(['register', '--uninstall'], env);
    expect(unregistered.code).toBe(0);
    expect(existsSync(desktopPath) || existsSync(mimePath)).toBe(false);
  });
});
