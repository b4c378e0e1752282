import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../../support/database.js';
import { http } from '../../support/http.js';
import { freePort } from '../../support/ports.js';
import { DatabaseMode, ROOT } from '../../support/server-process.js';

/** A server that can be killed with SIGKILL and started again on the same ports, DATA_DIR and database. */
export interface RestartableServer {
  url: string;
  confirmPort: number;
  adminToken: string;
  dataDir: string;
  databaseUrl: string | undefined;
  pid: () => number;
  output: () => string;
  /** SIGKILL, and wait until the process is gone. */
  kill9: () => Promise<void>;
  restart: () => Promise<void>;
  stop: () => Promise<void>;
  admin: (path: string) => Promise<Response>;
}

function startArguments(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [, ...args] = scripts.start.replace(/^exec\s+/, '').split(/\s+/);
  return args.map((arg) => (arg.startsWith('-') ? arg : join(ROOT, arg)));
}

export async function startRestartable(mode: DatabaseMode, extraEnv: Record<string, string> = {}): Promise<RestartableServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dcx-hostile-server-'));
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
    LOG_LEVEL: 'warn',
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...extraEnv,
  };
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess;
  let exited: Promise<void>;
  let collected = '';

  const launch = async () => {
    child = spawn(process.execPath, startArguments(), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk) => (collected += chunk));
    child.stderr!.on('data', (chunk) => (collected += chunk));
    exited = new Promise((done) => child.once('exit', () => done()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${collected}`);
      try {
        if ((await http(`${url}/.well-known/dcx`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server did not start within 60 s:\n${collected}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await launch();

  const kill9 = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    confirmPort,
    adminToken,
    dataDir,
    databaseUrl: database?.url,
    pid: () => child.pid!,
    output: () => collected,
    kill9,
    restart: async () => {
      await kill9();
      await launch();
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
    admin: (path) => http(`${url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } }),
  };
}
