import { ChildProcess, spawn, StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createTestDatabase } from './database.js';
import { http } from './http.js';
import { freePort } from './ports.js';

/** The package root: two levels up from test/support, three when compiled under dist/ (the benchmark). */
export const ROOT = [resolve(import.meta.dirname, '..', '..'), resolve(import.meta.dirname, '..', '..', '..')].find((dir) =>
  existsSync(join(dir, 'package.json')),
)!;
export type DatabaseMode = 'postgres' | 'pglite';

/** Node's arguments exactly as package.json's `start` script gives them (flags, then dist/src/server/main.js). */
export function serverArguments(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  // `exec`: npm's shell is replaced by node, so a SIGTERM to `npm start` reaches the server.
  const [command, ...args] = scripts.start.replace(/^exec\s+/, '').split(/\s+/);
  if (command !== 'node') throw new Error(`package.json "start" should run node, not: ${scripts.start}`);
  return args.map((arg) => (arg.startsWith('-') ? arg : join(ROOT, arg)));
}

/**
 * How the server is started: node itself (as `npm start` runs it), `npm start` (an operator at a shell), or
 * node under a pseudo-terminal made by `script` (an operator watching its output).
 */
export type Launcher = 'node' | 'npm' | 'tty';

function launch(via: Launcher, env: NodeJS.ProcessEnv, stdio: StdioOptions): ChildProcess {
  if (via === 'npm') return spawn('npm', ['start'], { env, stdio, cwd: ROOT });
  if (via === 'tty') {
    const command = [process.execPath, ...serverArguments()].map((arg) => `'${arg}'`).join(' ');
    return spawn('script', ['--quiet', '--flush', '--return', '--command', command, '/dev/null'], { env, stdio });
  }
  return spawn(process.execPath, serverArguments(), { env, stdio });
}

export interface RunningServer {
  url: string;
  /** The server process, for sampling its memory. */
  pid: number;
  confirmPort: number;
  adminToken: string;
  dataDir: string;
  /** The fresh PostgreSQL database's URL (postgres mode). */
  databaseUrl: string | undefined;
  output: () => string;
  stop: () => Promise<void>;
  admin: (path: string, init?: { method?: string; headers?: Record<string, string> }) => Promise<Response>;
}

/** What a test server needs before it starts: its own DATA_DIR, database (postgres), free ports, admin token, environment. */
export async function serverSetup(mode: DatabaseMode, extraEnv: Record<string, string> = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'dcx-server-'));
  const database = mode === 'postgres' ? await createTestDatabase() : null;
  const port = await freePort();
  const confirmPort = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    CONFIRM_PORT: String(confirmPort),
    PUBLIC_HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_TOKEN: adminToken,
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...extraEnv,
  };
  return { dataDir, database, port, confirmPort, adminToken, env, url: `http://127.0.0.1:${port}` };
}

/**
 * Starts the real server (the built dist/, as `npm start` does) on free ports with its own DATA_DIR.
 * Its output is collected in memory, or with `logFile` written to that file as a process manager would
 * (the benchmark: a test process reading thousands of log lines a second takes CPU from the server).
 */
export async function startServer(
  mode: DatabaseMode,
  extraEnv: Record<string, string> = {},
  options: { logFile?: string; via?: Launcher } = {},
): Promise<RunningServer> {
  const { dataDir, database, port, confirmPort, adminToken, env } = await serverSetup(mode, extraEnv);
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const child = launch(options.via ?? 'node', env, ['ignore', logFd ?? 'pipe', logFd ?? 'pipe']);
  if (logFd !== undefined) closeSync(logFd); // the child has its own copy
  let collected = '';
  child.stdout?.on('data', (chunk) => (collected += chunk));
  child.stderr?.on('data', (chunk) => (collected += chunk));
  const output = () => (options.logFile === undefined ? collected : readFileSync(options.logFile, 'utf8'));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));

  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    await database?.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`server exited with ${child.exitCode}:\n${output()}`);
    }
    try {
      if ((await http(`${url}/.well-known/dcx`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`server did not start within 60 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    pid: child.pid!,
    confirmPort,
    adminToken,
    dataDir,
    databaseUrl: database?.url,
    output,
    stop,
    admin: (path, init = {}) =>
      http(`${url}${path}`, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${adminToken}` } }),
  };
}
