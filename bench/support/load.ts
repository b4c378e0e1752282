import { connect, Socket } from 'node:net';
import { answerStatusName, decodeAnswer } from '../../src/protocol/answer.js';
import { FrameParser } from '../../src/protocol/frame.js';
import { percentile } from './stats.js';
import { runOk } from './proc.js';

export interface HttpLoadResult {
  requestsPerSecond: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

/**
 * `wrk --latency` against one URL; keep-alive connections, as a browser or download manager would use.
 * `script` is a wrk Lua script (see headerCycleScript).
 */
export async function wrk(
  url: string,
  options: { connections: number; seconds: number; threads: number; script?: string },
): Promise<HttpLoadResult> {
  const args = [
    '-t',
    String(options.threads),
    '-c',
    String(options.connections),
    '-d',
    `${options.seconds}s`,
    '--timeout',
    '10s',
    '--latency',
  ];
  if (options.script !== undefined) args.push('-s', options.script);
  const { stdout } = await runOk('wrk', [...args, url], { timeoutMs: (options.seconds + 30) * 1000 });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$/m.exec(stdout);
  const total = /(\d+) requests in/.exec(stdout);
  if (!rps || !p99 || !total) throw new Error(`cannot read wrk's output:\n${stdout}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requestsPerSecond: Number(rps[1]),
    p99Ms: toMs(p99[1], p99[2]),
    requests: Number(total[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
  };
}

/**
 * A wrk script whose requests carry `header` with each of `values` in turn (each wrk thread cycles through
 * all of them, one request each): that many different clients. The requests are formatted once; wrk only
 * picks the next one.
 */
export function headerCycleScript(header: string, values: string[]): string {
  return `local values = { ${values.map((value) => JSON.stringify(value)).join(', ')} }
local requests = {}
function init(args)
  for i, value in ipairs(values) do requests[i] = wrk.format(nil, nil, { [${JSON.stringify(header)}] = value }) end
end
local n = 0
function request()
  n = n + 1
  return requests[(n % #requests) + 1]
end
`;
}

export interface ConfirmLoadResult {
  perSecond: number;
  p99Ms: number;
  statuses: Record<string, number>;
}

/**
 * `clients` TCP connections to the confirmation port, each sending one confirmation frame, waiting
 * for its answer, then sending the next, until `frames` are all answered (closed loop).
 */
export async function confirmLoad(port: number, frames: Buffer[], clients: number, timeoutMs: number): Promise<ConfirmLoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let next = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + timeoutMs;

  const client = () =>
    new Promise<void>((resolve, reject) => {
      const parser = new FrameParser();
      let sentAt = 0n;
      const socket: Socket = connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      const send = () => {
        if (next >= frames.length || Date.now() > deadline) return void socket.end();
        sentAt = process.hrtime.bigint();
        socket.write(frames[next++]);
      };
      socket.once('connect', send);
      socket.on('data', (chunk) => {
        try {
          parser.parse(chunk, (frame) => {
            latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
            const name = answerStatusName(decodeAnswer(frame).status);
            statuses[name] = (statuses[name] ?? 0) + 1;
            send();
          });
        } catch (error) {
          socket.destroy(error as Error);
        }
      });
      socket.on('error', reject);
      socket.on('close', () => resolve());
    });

  await Promise.all(Array.from({ length: clients }, client));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { perSecond: latencies.length / seconds, p99Ms: percentile(latencies, 99), statuses };
}
