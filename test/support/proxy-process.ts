import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './server-process.js';

/** The CONNECT proxy of test/support/connect-proxy.mjs, as a process of its own. */
export interface RunningProxy {
  url: string;
  port: number;
  /** Its log: one "CONNECT host:port status" line per request. */
  lines: () => string[];
  stop: () => Promise<void>;
}

export async function startProxy(options: { port?: number; deny?: string[]; denyStatus?: number } = {}): Promise<RunningProxy> {
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'test/support/connect-proxy.mjs')], {
    env: {
      PATH: process.env.PATH,
      PROXY_PORT: String(options.port ?? 0),
      PROXY_DENY: (options.deny ?? []).join(','),
      PROXY_DENY_STATUS: String(options.denyStatus ?? 403),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^listening (\d+)$/m.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`the proxy exited with ${code}: ${output}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    lines: () => output.split('\n').filter((line) => line.startsWith('CONNECT ')),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
