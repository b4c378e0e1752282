import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newClientHome } from './support/cli-process.js';
import { http } from './support/http.js';
import { ROOT, RunningServer, startServer } from './support/server-process.js';

const SERVER_ENTRY = join(ROOT, 'dist/src/server/main.js');

/** `cmd` quoted for the shell that `script` starts. */
const shellQuote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/** Runs a command under a pseudo-terminal made by `script`, as a user at a terminal would; everything it wrote. */
function onTerminal(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['--quiet', '--return', '--command', args.map(shellQuote).join(' '), '/dev/null'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** How long a stopped server may take to close its ports. */
const STOP_WITHIN_MS = 15_000;

async function refusesConnections(url: string): Promise<boolean> {
  try {
    await http(`${url}/health`);
    return false;
  } catch {
    return true;
  }
}

describe('an operator starting and stopping the server', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('`npm start` serves the build made at install, without rebuilding, and stops on SIGTERM to npm', async () => {
    const built = statSync(SERVER_ENTRY).mtimeMs;
    server = await startServer('pglite', {}, { via: 'npm' });
    expect(statSync(SERVER_ENTRY).mtimeMs).toBe(built); // a rebuild (rm -rf dist, tsc) would have replaced it
    expect((await http(`${server.url}/health`)).status).toBe(200);

    const started = Date.now();
    process.kill(server.pid, 'SIGTERM');
    while (!(await refusesConnections(server.url))) {
      if (Date.now() - started > STOP_WITHIN_MS) throw new Error(`still serving ${STOP_WITHIN_MS} ms after SIGTERM to npm`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 90_000);

  it('prints one readable line for its start-up on a terminal, and JSON lines otherwise', async () => {
    server = await startServer('pglite', {}, { via: 'tty' });
    const onTerminal = server
      .output()
      .split(/\r?\n/)
      .filter((line) => line.trim() !== '');
    expect(onTerminal).toHaveLength(1);
    expect(onTerminal[0]).toMatch(
      /^\d\d:\d\d:\d\d info {2}DCX: DCX listening on http:\/\/.+, confirmation port \d+, database: embedded PGlite/,
    );
    await server.stop();

    server = await startServer('pglite');
    const lines = server.output().trim().split('\n');
    expect(lines.length).toBeGreaterThan(20); // every module and route, as a log collector wants them
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
  }, 90_000);

  it('`dcx publish` on a terminal shows the progress of the upload (issue 21: a 1 GB upload showed nothing)', async () => {
    server = await startServer('pglite');
    const work = await mkdtemp(join(tmpdir(), 'dcx-publish-'));
    const file = join(work, 'film.mp4');
    await writeFile(file, '');
    await truncate(file, 256 * 1024 * 1024); // sparse: large enough for the bar to be drawn more than once
    const { code, output } = await onTerminal(
      [process.execPath, join(ROOT, 'dist/src/client/main.js'), 'publish', file, '--server', server.url],
      { DCX_HOME: await newClientHome(), DCX_ADMIN_TOKEN: server.adminToken },
    );
    expect(code).toBe(0);
    expect(output).toMatch(/uploading \[[^\]]*\] \d+% \| [\d.]+ (B|KiB|MiB)\/256\.0 MiB/);
    expect(output).toMatch(/content [0-9a-f-]{36}/);
  }, 90_000);
});
