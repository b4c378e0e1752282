import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './server-process.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One installation of the client: its own DCX_HOME, so its own key pair and pinned servers. */
export async function newClientHome(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'dcx-home-'));
}

/** Runs the real `dcx` CLI (dist/src/client/main.js, the package's bin) as a process. */
export function dcx(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runDcx([process.execPath, join(ROOT, 'dist/src/client/main.js')], args, env);
}

/** Runs a `dcx` built some other way (the installed package, the single executable): `command` is how to start it. */
export function runDcx(command: string[], args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], [...command.slice(1), ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Publishes a file with `dcx publish` as the admin; the content's id and name. */
export async function publish(
  server: { url: string; adminToken: string },
  path: string,
  access: 'public' | 'token',
): Promise<{ id: string; name: string }> {
  const result = await dcx(['publish', path, '--server', server.url, '--access', access, '--json'], {
    DCX_HOME: await newClientHome(),
    DCX_ADMIN_TOKEN: server.adminToken,
  });
  if (result.code !== 0) throw new Error(`dcx publish exited with ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as { id: string; name: string };
}
