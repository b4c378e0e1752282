// The agent's commands as the CLI parses them: usage errors and refusals before anything runs.
import { join } from 'node:path';
import { run } from '../cli.js';
import { CommandContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import { DcxHome } from '../home.js';
import { removeTempDirs, tempDir } from '../testing/temp-dirs.js';
import { AgentStateFile } from './state.js';

afterAll(removeTempDirs);

async function dcx(args: string[], home?: DcxHome, env: NodeJS.ProcessEnv = {}) {
  const lines: string[] = [];
  const ctx: CommandContext = {
    home: home ?? new DcxHome(await tempDir()),
    out: (text) => lines.push(text),
    notice: () => undefined,
    progress: false,
  };
  const result = await run(args, ctx, env);
  return { ...result, stdout: lines.join('\n') };
}

describe('dcx agent / status / register on the command line', () => {
  test('agent without --out, with a lease out of range, or with --install and --uninstall is a usage error', async () => {
    expect(await dcx(['agent'])).toEqual({ code: ExitCode.Usage, error: expect.stringMatching(/--out <dir> is required/), stdout: '' });
    expect((await dcx(['agent', '--out', '/tmp/x', '--lease-seconds', '5'])).error).toMatch(
      /--lease-seconds "5" must be a whole number from 10 to 3600/,
    );
    expect((await dcx(['agent', '--install', '--uninstall'])).code).toBe(ExitCode.Usage);
    expect((await dcx(['agent', '--out', '/tmp/x', '--via', 'carrier-pigeon'])).code).toBe(ExitCode.Usage);
  });

  test('agent of an installation enrolled nowhere, or not at the server given: exit 8 with what to run', async () => {
    expect(await dcx(['agent', '--out', '/tmp/x'])).toMatchObject({
      code: ExitCode.Refused,
      error: 'this installation is not enrolled at any server; run `dcx enrol <server-url> --code <code>` first',
    });
    expect(await dcx(['agent', 'http://127.0.0.1:9', '--out', '/tmp/x'])).toMatchObject({
      code: ExitCode.Refused,
      error: expect.stringMatching(/not enrolled at http:\/\/127\.0\.0\.1:9; run `dcx enrol http:\/\/127\.0\.0\.1:9 --code <code>`/),
    });
  });

  test('status: never ran; then a recorded agent whose pid is gone is not running', async () => {
    const home = new DcxHome(await tempDir());
    const never = await dcx(['status'], home);
    expect(never).toMatchObject({ code: 0, stdout: expect.stringMatching(/^agent: never ran in this installation.*\noutbox: empty/) });
    await new AgentStateFile(home).write({
      pid: 2 ** 22 + 4321,
      server: 'http://s',
      out: '/o',
      startedAt: '2026-12-03T00:00:00.000Z',
      lastContactAt: null,
      connected: true,
      lastDelivery: null,
    });
    const json = JSON.parse((await dcx(['status', '--json'], home)).stdout) as { agent: { running: boolean }; outbox: unknown[] };
    expect(json).toMatchObject({ agent: { running: false, server: 'http://s' }, outbox: [] });
    expect((await dcx(['status'], home)).stdout).toMatch(/^agent: not running \(last pid \d+, gone\)/);
  });

  test('a second agent for the same DCX_HOME while the first runs: refused, exit 1', async () => {
    const home = new DcxHome(await tempDir());
    await home.enrolments().record({ origin: 'http://127.0.0.1:9', recipientId: 'r', name: 'n', fingerprint: 'f', enrolledAt: 'now' });
    // The pid of this test process: alive, and not the agent's own.
    await new AgentStateFile(home).write({
      pid: process.ppid,
      server: 'http://127.0.0.1:9',
      out: '/o',
      startedAt: 'now',
      lastContactAt: null,
      connected: true,
      lastDelivery: null,
    });
    expect(await dcx(['agent', '--out', join(home.dir, 'out')], home)).toMatchObject({
      code: ExitCode.Failure,
      error: expect.stringMatching(/^an agent already runs for this installation \(pid \d+, DCX_HOME .*\); `dcx status` shows it$/),
    });
  });

  test('agent --uninstall --no-enable and register --uninstall need no enrolment', async () => {
    const xdg = await tempDir();
    const env = { XDG_CONFIG_HOME: join(xdg, 'c'), XDG_DATA_HOME: join(xdg, 'd'), PATH: '' };
    expect((await dcx(['agent', '--uninstall', '--no-enable'], undefined, env)).stdout).toBe(
      `removed the systemd user unit ${join(xdg, 'c', 'systemd', 'user', 'dcx-agent.service')}`,
    );
    expect((await dcx(['register', '--uninstall'], undefined, env)).code).toBe(0);
  });
});
