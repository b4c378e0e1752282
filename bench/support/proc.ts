import { ChildProcess, spawn } from 'node:child_process';

/**
 * Everything the benchmark starts is registered here and stopped in reverse order, on success,
 * failure, Ctrl-C or the overall deadline alike.
 */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];

  add(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  async runAll(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await withTimeout(Promise.resolve(step.run()), 30_000, `stopping ${step.name}`);
      } catch (error) {
        console.error(`bench: cleanup of ${step.name} failed: ${(error as Error).message}`);
      }
    }
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  ms: number;
}

const running = new Set<ChildProcess>();

/** Kills every command still running (on abort). */
export function killRunning(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Runs a command to completion, killed after `timeoutMs`; output collected (keep it small). */
export function run(command: string, args: string[], options: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (signal === 'SIGKILL') reject(new Error(`${command} ${args.join(' ')}: killed after ${options.timeoutMs / 1000} s`));
      else resolve({ code, stdout, stderr, ms });
    });
  });
}

/** Runs a command that must succeed; returns its result. */
export async function runOk(command: string, args: string[], options: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0)
    throw new Error(`${command} ${args.join(' ')} exited with ${result.code}: ${(result.stderr || result.stdout).slice(0, 2000)}`);
  return result;
}

/** True when `command` is on PATH (or in /usr/sbin, where Debian puts nginx). */
export async function which(command: string): Promise<string | null> {
  const result = await run('sh', ['-c', `command -v ${command} || ls /usr/sbin/${command} 2>/dev/null`], { timeoutMs: 5_000 });
  const path = result.stdout.trim().split('\n')[0];
  return path ? path : null;
}

/** Installs Debian packages when a command is missing (the benchmark's only system dependencies). */
export async function ensureCommand(command: string, debianPackage: string): Promise<string> {
  const found = await which(command);
  if (found) return found;
  console.log(`bench: ${command} not found; apt-get install ${debianPackage}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runOk('apt-get', ['update', '-qq'], { timeoutMs: 180_000, env });
  await runOk('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debianPackage], { timeoutMs: 300_000, env });
  const installed = await which(command);
  if (!installed) throw new Error(`${command} still missing after installing ${debianPackage}`);
  return installed;
}
