// For the resident agent's e2e specs: a server that can be stopped and started again on the same ports and
// database (a restart, not a new server), enrolled installations, and `dcx agent` as a long-running process.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newClientHome, dcx } from './cli-process.js';
import { createTestDatabase } from './database.js';
import { http } from './http.js';
import { freePort } from './ports.js';
import { ROOT } from './server-process.js';
import { until } from './eventually.js';

export interface RestartableServer {
  url: string;
  confirmPort: number;
  adminToken: string;
  databaseUrl: string;
  output: () => string;
  /** SIGTERM, and wait for the exit (its streams get their `bye`). */
  stop: () => Promise<void>;
  start: () => Promise<void>;
  destroy: () => Promise<void>;
}

/** The real built server on PostgreSQL, started as `npm start` runs it; `env` is added to its environment. */
export async function restartableServer(extraEnv: Record<string, string>): Promise<RestartableServer> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(join(tmpdir(), 'dcx-agent-server-'));
  const port = await freePort();
  const adminToken = randomBytes(24).toString('base64url');
  const confirmPort = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: String(port),
    CONFIRM_PORT: String(confirmPort),
    PUBLIC_HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_TOKEN: adminToken,
    DATABASE_URL: database.url,
    ...extraEnv,
  };
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let collected = '';
  const stop = async () => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((done) => running.once('exit', done));
    running.kill('SIGTERM');
    await exited;
  };
  const start = async () => {
    const started = spawn(process.execPath, ['--max-semi-space-size=4', join(ROOT, 'dist/src/server/main.js')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout.on('data', (chunk) => (collected += chunk));
    started.stderr.on('data', (chunk) => (collected += chunk));
    await until(
      `the server at ${url}`,
      async () => {
        if (started.exitCode !== null) throw new Error(`server exited with ${started.exitCode}:\n${collected}`);
        return (await http(`${url}/.well-known/dcx`).catch(() => null))?.ok ?? false;
      },
      60_000,
    );
  };
  await start();
  return {
    url,
    confirmPort,
    adminToken,
    databaseUrl: database.url,
    output: () => collected,
    stop,
    start,
    destroy: async () => {
      await stop();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** An admin call with a JSON body. */
export async function adminJson<T>(server: { url: string; adminToken: string }, path: string, body: unknown): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status !== 201 && response.status !== 200) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** A new installation enrolled as the recipient `name`: its DCX_HOME and recipient id. */
export async function enrolledInstallation(
  server: { url: string; adminToken: string },
  name: string,
): Promise<{ home: string; recipientId: string }> {
  const { code } = await adminJson<{ code: string }>(server, '/api/recipients/enrolment-codes', { name, expiresIn: '1d' });
  const home = await newClientHome();
  const enrolled = await dcx(['enrol', server.url, '--code', code, '--name', name, '--json'], { DCX_HOME: home });
  if (enrolled.code !== 0) throw new Error(`dcx enrol exited with ${enrolled.code}: ${enrolled.stderr}`);
  return { home, recipientId: (JSON.parse(enrolled.stdout) as { recipientId: string }).recipientId };
}

/** A line a process wrote, with when the test saw it. */
export interface SeenLine {
  at: number;
  text: string;
}

/** `dcx agent …` as a running process: its output lines as they come, and ways to end it. */
export class AgentProcess {
  readonly stdout: SeenLine[] = [];
  readonly stderr: SeenLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private partial = { stdout: '', stderr: '' };

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [join(ROOT, 'dist/src/client/main.js'), 'agent', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      this.child[stream]!.setEncoding('utf8');
      this.child[stream]!.on('data', (chunk: string) => {
        const lines = (this.partial[stream] + chunk).split('\n');
        this.partial[stream] = lines.pop()!;
        for (const text of lines) this[stream].push({ at: Date.now(), text });
      });
    }
    this.exited = new Promise((done) => this.child.once('exit', (code) => done(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits for a line on stdout or stderr matching `pattern`, the `n`-th one (1-based). */
  line(pattern: RegExp, n = 1, timeoutMs = 30_000, stream: 'stdout' | 'stderr' | 'both' = 'both'): Promise<SeenLine> {
    return until(
      `line ${n} matching ${pattern} from dcx agent (pid ${this.pid}); so far:\n${this.all()}`,
      async () => this.matching(pattern, stream)[n - 1],
      timeoutMs,
    );
  }

  matching(pattern: RegExp, stream: 'stdout' | 'stderr' | 'both' = 'both'): SeenLine[] {
    const lines = stream === 'both' ? [...this.stdout, ...this.stderr].sort((a, b) => a.at - b.at) : this[stream];
    return lines.filter((l) => pattern.test(l.text));
  }

  all(): string {
    return [...this.stdout.map((l) => `out: ${l.text}`), ...this.stderr.map((l) => `err: ${l.text}`)].join('\n');
  }

  async kill(signal: NodeJS.Signals): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}
