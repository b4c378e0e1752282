/*
 * The load tool of the inbox-events bench: ONE process (forked by bench/inbox-events.ts, driven over IPC) holding
 * thousands of signed `GET /api/inbox/events` streams on raw sockets: a few hundred bytes of state per stream, no
 * HTTP client library, so that the load tool itself is not what limits the count. It notes when each stream got
 * its n-th `waiting` event (epoch ms, the same clock as the parent's) and counts heartbeats and `bye` events.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../../src/protocol/constants.js';
import { parseClientIdentity } from '../../src/protocol/keys.js';
import { clientRequestAuthKey, signRequest } from '../../src/protocol/request-auth.js';

export type LoadCommand =
  | { type: 'open'; url: string; keyId: string; sealKey: string; identitiesFile: string; concurrency: number; count?: number }
  | { type: 'arrivals'; n: number }
  | { type: 'counts' }
  | { type: 'close' };

export type LoadReply =
  | { type: 'opened'; ok: number; failed: number; firstError: string | null; seconds: number }
  | { type: 'arrivals'; n: number; at: number[] }
  | { type: 'counts'; open: number; waiting: number[]; heartbeats: number; byes: number }
  | { type: 'closed' };

const PATH = '/api/inbox/events';
const WAITING = 'event: waiting';
const HEARTBEAT = ': hb ';
const BYE = 'event: bye';
/** Enough of the previous chunk to find a marker cut in two by a segment boundary. */
const CARRY = 16;

const now = () => performance.timeOrigin + performance.now();

interface Stream {
  socket: Socket;
  headers: boolean;
  waiting: number;
  tail: string;
}

const streams: Stream[] = [];
/** arrivals[n - 1][i]: when stream i got its n-th `waiting` (0: not yet). */
const arrivals: Float64Array[] = [];
let heartbeats = 0;
let byes = 0;

function count(text: string, marker: string): number {
  let n = 0;
  for (let at = text.indexOf(marker); at >= 0; at = text.indexOf(marker, at + marker.length)) n++;
  return n;
}

function openOne(url: URL, index: number, headers: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const stream: Stream = { socket, headers: false, waiting: 0, tail: '' };
    socket.setNoDelay(true);
    socket.setEncoding('latin1');
    socket.once('connect', () => socket.write(headers));
    socket.on('data', (chunk: string) => {
      const text = stream.tail + chunk;
      stream.tail = text.slice(-CARRY);
      if (!stream.headers) {
        if (!text.startsWith('HTTP/1.1 200')) {
          socket.destroy();
          reject(new Error(`stream ${index}: ${text.split('\r\n')[0]}`));
          return;
        }
        stream.headers = true;
        streams[index] = stream;
        resolve();
      }
      const at = now();
      for (let k = count(text, WAITING); k > 0; k--) {
        stream.waiting++;
        (arrivals[stream.waiting - 1] ??= new Float64Array(streams.length))[index] = at;
      }
      heartbeats += count(text, HEARTBEAT);
      byes += count(text, BYE);
    });
    socket.once('error', reject);
  });
}

async function open(command: Extract<LoadCommand, { type: 'open' }>): Promise<LoadReply> {
  const url = new URL(command.url);
  const sealKey = Buffer.from(command.sealKey, 'base64url');
  const lines = readFileSync(command.identitiesFile, 'utf8').trim().split('\n');
  const identities = lines.slice(0, command.count ?? lines.length).map(parseClientIdentity);
  streams.length = identities.length;
  const started = now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async () => {
    while (next < identities.length) {
      const index = next++;
      const identity = identities[index];
      const key = clientRequestAuthKey(identity.privateKey, identity.publicKey, sealKey);
      const headers =
        `GET ${PATH} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n` +
        `${CLIENT_KEY_HEADER}: ${identity.publicKey.toString('base64url')}\r\n` +
        `${REQUEST_AUTH_HEADER}: ${signRequest(key, command.keyId, { method: 'GET', path: PATH })}\r\n\r\n`;
      try {
        await openOne(url, index, headers);
        ok++;
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: command.concurrency }, worker));
  return { type: 'opened', ok, failed, firstError, seconds: (now() - started) / 1000 };
}

process.on('message', (command: LoadCommand) => {
  const reply = (message: LoadReply) => process.send!(message);
  if (command.type === 'open') void open(command).then(reply);
  else if (command.type === 'arrivals') reply({ type: 'arrivals', n: command.n, at: [...(arrivals[command.n - 1] ?? [])] });
  else if (command.type === 'counts') {
    const open = streams.filter((s) => s && !s.socket.destroyed).length;
    reply({ type: 'counts', open, waiting: arrivals.map((a) => a.filter((t) => t > 0).length), heartbeats, byes });
  } else if (command.type === 'close') {
    for (const stream of streams) stream?.socket.destroy();
    streams.length = 0;
    arrivals.length = 0;
    reply({ type: 'closed' });
  }
});
