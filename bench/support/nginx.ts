import { spawn } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../test/support/ports.js';
import { Cleanup, ensureCommand, run } from './proc.js';

export interface Nginx {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Files put here are served at url/<name>. */
  root: string;
  version: string;
}

/**
 * The baseline: Debian's nginx with a generated config, bound to 127.0.0.1 on a free port,
 * sendfile on, no access log, in the foreground as our child (stopped by `cleanup`).
 */
export async function startNginx(workDir: string, cleanup: Cleanup): Promise<Nginx> {
  const binary = await ensureCommand('nginx', 'nginx-light');
  const prefix = join(workDir, 'nginx');
  const root = join(prefix, 'www');
  await mkdir(join(prefix, 'tmp'), { recursive: true });
  await mkdir(root, { recursive: true });
  // Workers run as nobody when the master is root: they must be able to read the files.
  for (const dir of [workDir, prefix, root]) await chmod(dir, 0o755);
  const port = await freePort();
  const conf = join(prefix, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const version = (await run(binary, ['-v'], { timeoutMs: 10_000 })).stderr.trim();
  const child = spawn(binary, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr.on('data', (chunk) => (errors += chunk));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  cleanup.add('nginx', async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${errors}`);
    const probe = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${url}/`], { timeoutMs: 5_000 });
    if (probe.stdout !== '000') break;
    if (attempt >= 50) throw new Error(`nginx did not answer on ${url} within 10 s: ${errors}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, root, version };
}
