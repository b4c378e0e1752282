// For the resident agent's e2e specs (with restartable-server.ts): enrolled installations, and `dcx agent` as a
// long-running process.
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { newClientHome, dcx } from './cli-process.js';
import { ROOT } from './server-process.js';
import { until } from './eventually.js';

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
