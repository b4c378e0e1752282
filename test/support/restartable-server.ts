import { ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { http } from './http.js';
import { DatabaseMode, serverArguments, serverSetup } from './server-process.js';

/**
 * The real built server that can be stopped (SIGTERM) or killed (SIGKILL) and started again on the same ports,
 * DATA_DIR and database: a restart, not a new server (agents reconnecting, a crash mid-download).
 */
export interface RestartableServer {
  url: string;
  confirmPort: number;
  adminToken: string;
  dataDir: string;
  databaseUrl: string | undefined;
  pid: () => number;
  output: () => string;
  /** Starts it again after `terminate` or `kill9`. */
  start: () => Promise<void>;
  /** SIGTERM, and wait for the exit (its event streams get their `bye`). */
  terminate: () => Promise<void>;
  /** SIGKILL, and wait until the process is gone. */
  kill9: () => Promise<void>;
  /** kill9, then start. */
  restart: () => Promise<void>;
  /** SIGTERM, then the database and DATA_DIR are dropped. */
  stop: () => Promise<void>;
  admin: (path: string) => Promise<Response>;
}

export async function startRestartable(mode: DatabaseMode, extraEnv: Record<string, string> = {}): Promise<RestartableServer> {
  const { dataDir, database, confirmPort, adminToken, env, url } = await serverSetup(mode, extraEnv);
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let collected = '';
  const running = () => child !== null && child.exitCode === null && child.signalCode === null;

  const start = async () => {
    const started = spawn(process.execPath, serverArguments(), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout.on('data', (chunk) => (collected += chunk));
    started.stderr.on('data', (chunk) => (collected += chunk));
    exited = new Promise((done) => started.once('exit', () => done()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (started.exitCode !== null || started.signalCode !== null)
        throw new Error(`server exited with ${started.exitCode}:\n${collected}`);
      try {
        if ((await http(`${url}/.well-known/dcx`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server did not start within 60 s:\n${collected}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const signal = async (name: NodeJS.Signals) => {
    if (running()) child!.kill(name);
    await exited;
  };
  await start();
  return {
    url,
    confirmPort,
    adminToken,
    dataDir,
    databaseUrl: database?.url,
    pid: () => child!.pid!,
    output: () => collected,
    start,
    terminate: () => signal('SIGTERM'),
    kill9: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGKILL');
      await start();
    },
    stop: async () => {
      await signal('SIGTERM');
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
    admin: (path) => http(`${url}${path}`, { headers: { authorization: `Bearer ${adminToken}` } }),
  };
}
