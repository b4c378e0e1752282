/*
 * Issue 16's figures: 10,000 agents holding `GET /api/inbox/events` open on one server (held by ONE load process,
 * bench/support/sse-load.ts), the server's RSS growth per idle stream, the latency of a distribution's `waiting`
 * notice to all of them, the CPU cost of the heartbeats; and pull-next-with-deletion cycles (lease, pull a 10 KiB
 * bundle, ack its confirmation) with 50 agents against the TCP confirmations row of the same run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER } from '../src/protocol/constants.js';
import { generateClientIdentity, serializeClientIdentity, type ClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { clientRequestAuthKey, signRequest } from '../src/protocol/request-auth.js';
import type { RunningServer } from '../test/support/server-process.js';
import type { Row } from './support/report.js';
import type { LoadCommand, LoadReply } from './support/sse-load.js';
import { KiB, percentile, summarize, type Summary } from './support/stats.js';

/** BENCH_INBOX_STREAMS: fewer for a quick check of the bench itself (development only; the row is about 10,000). */
const STREAMS = Math.max(1, Number(process.env.BENCH_INBOX_STREAMS ?? 10_000));
/** Streams being opened at once by the load process (each waits for its 200 before the next starts). */
const OPEN_CONCURRENCY = 200;
/** Distributions to all 10,000, one notice round each. */
const NOTICE_ROUNDS = 3;
/** The heartbeat interval of the measured server: 25 times the default (25 s), so that an idle window shows its cost. */
const BENCH_HEARTBEAT_MS = 1000;
const DEFAULT_HEARTBEAT_MS = 25_000;
/** The idle windows over which CPU is read from /proc (clock ticks of 10 ms: 0.05% resolution over 20 s). */
const IDLE_WINDOW_MS = 20_000;
/** Settling time after the streams opened, before RSS is read: the connect burst's garbage is collected meanwhile. */
const SETTLE_MS = 5000;
const AGENTS = 50;
const CYCLES_PER_AGENT = 20;
const STREAM_LABEL = 'bench-agents-10k';
/** Streams opened and closed before RSS is first read. */
const WARM_UP_SHARE = 0.05;
const CYCLE_LABEL = 'bench-agents-50';

export interface InboxBench {
  /** Starts a server on the run's database and data directory, with these extra settings. */
  startDcx: (env: Record<string, string>) => Promise<RunningServer>;
  db: pg.Client;
  workDir: string;
  runs: number;
  content: { id: string; sha256: string };
  /** The TCP confirmations row of this run (confirmations/s), or null when that section did not run. */
  tcpConfirmations: Summary | null;
  rows: Row[];
  notes: string[];
}

const epochMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function procStat(pid: number): { cpuTicks: number } {
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

function rssOf(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** CPU of `pid` over `ms`, as a fraction of one core (Linux clock ticks are 10 ms). */
async function cpuOver(pid: number, ms: number): Promise<number> {
  const before = procStat(pid).cpuTicks;
  const started = epochMs();
  await sleep(ms);
  return ((procStat(pid).cpuTicks - before) * 10) / (epochMs() - started);
}

/** Enrols `count` installations directly in the database (one recipient each, labelled), returns their identities. */
async function enrolled(db: pg.Client, count: number, label: string): Promise<{ identities: ClientIdentity[]; recipientIds: string[] }> {
  const identities = Array.from({ length: count }, () => generateClientIdentity());
  console.log(`bench: ${count.toLocaleString('en-US')} client keys made`);
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO recipients (name, labels) SELECT 'Agent ' || i, ARRAY[$1] FROM generate_series(1, $2) i RETURNING id`,
    [label, count],
  );
  const recipientIds = rows.map(({ id }) => id);
  await db.query(
    `INSERT INTO recipient_installations (fingerprint, recipient_id, public_key) SELECT * FROM unnest($1::text[], $2::uuid[], $3::bytea[])`,
    [identities.map((i) => i.fingerprint), recipientIds, identities.map((i) => i.publicKey)],
  );
  return { identities, recipientIds };
}

async function admin<T>(server: RunningServer, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function pinOf(server: RunningServer): Promise<{ keyId: string; sealKey: string }> {
  return (await (await fetch(`${server.url}/.well-known/dcx`)).json()) as { keyId: string; sealKey: string };
}

/** The forked load process, one request/answer at a time. */
class LoadProcess {
  private readonly child: ChildProcess;
  private waiter: ((reply: LoadReply) => void) | null = null;

  constructor() {
    this.child = fork(join(import.meta.dirname, 'support', 'sse-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (reply: LoadReply) => this.waiter?.(reply));
  }

  ask<T extends LoadReply['type']>(command: LoadCommand, type: T): Promise<Extract<LoadReply, { type: T }>> {
    return new Promise((resolve) => {
      this.waiter = (reply) => {
        if (reply.type === type) resolve(reply as Extract<LoadReply, { type: T }>);
      };
      this.child.send(command);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  stop(): void {
    this.child.kill();
  }
}

/** `parts.streams`: section `inbox` (the 10,000 streams); `parts.cycles`: section `inbox-next`. */
export async function benchInboxEvents(bench: InboxBench, parts: { streams: boolean; cycles: boolean }): Promise<void> {
  const server = await bench.startDcx({ INBOX_HEARTBEAT: `${BENCH_HEARTBEAT_MS}ms` });
  try {
    if (parts.streams) await streams(bench, server);
    if (parts.cycles) await cycles(bench, server);
  } finally {
    await server.stop();
  }
}

/**
 * The entries of a bundle, read from their local headers: DCX writes sizes into them (no data descriptors,
 * src/protocol/zip-layout.ts) and stores every entry. A ZIP library's reader cost the 50 agents of this process
 * more CPU than the server spent on their cycles, on 2 cores that both share.
 */
function storedEntries(zip: Buffer): Buffer[] {
  const LOCAL_HEADER = 0x04034b50;
  const entries: Buffer[] = [];
  for (let at = 0; at + 30 <= zip.length && zip.readUInt32LE(at) === LOCAL_HEADER;) {
    const size = zip.readUInt32LE(at + 18);
    const start = at + 30 + zip.readUInt16LE(at + 26) + zip.readUInt16LE(at + 28);
    entries.push(zip.subarray(start, start + size));
    at = start + size;
  }
  return entries;
}

/** (a) 10,000 streams from one load process: RSS per stream, notice latency to all, heartbeat CPU. */
async function streams(bench: InboxBench, server: RunningServer): Promise<void> {
  console.log(`bench: ${STREAMS.toLocaleString('en-US')} inbox event streams from one load process`);
  const { identities } = await enrolled(bench.db, STREAMS, STREAM_LABEL);
  console.log(`bench: ${STREAMS.toLocaleString('en-US')} installations enrolled`);
  const group = await admin<{ id: string }>(server, 'POST', '/api/groups', { name: STREAM_LABEL, selector: { labels: [STREAM_LABEL] } });
  const identitiesFile = join(bench.workDir, 'stream-identities.txt');
  await writeFile(identitiesFile, identities.map((i) => serializeClientIdentity(i).replace(/\n/g, ' ')).join('\n'), { mode: 0o600 });
  const pin = await pinOf(server);

  const load = new LoadProcess();
  try {
    // Warm-up: the first streams also pay for the code paths' first runs (JIT, pools, heap growth), not per stream.
    const warmUp = { type: 'open', url: server.url, keyId: pin.keyId, sealKey: pin.sealKey, identitiesFile, concurrency: OPEN_CONCURRENCY };
    const warmed = await load.ask({ ...warmUp, count: Math.ceil(STREAMS * WARM_UP_SHARE) } as LoadCommand, 'opened');
    if (warmed.failed > 0) throw new Error(`${warmed.failed} warm-up streams failed to open: ${warmed.firstError}`);
    await load.ask({ type: 'close' }, 'closed');
    // Idle CPU with no stream (the lease sweep, the other timers): what the heartbeats are measured against.
    const idleCpu = await cpuOver(server.pid, IDLE_WINDOW_MS);
    const rssBefore = rssOf(server.pid);
    const opened = await load.ask(
      { type: 'open', url: server.url, keyId: pin.keyId, sealKey: pin.sealKey, identitiesFile, concurrency: OPEN_CONCURRENCY },
      'opened',
    );
    if (opened.failed > 0) throw new Error(`${opened.failed} streams failed to open: ${opened.firstError}`);
    console.log(`bench: ${opened.ok.toLocaleString('en-US')} streams open after ${opened.seconds.toFixed(1)} s`);
    await sleep(SETTLE_MS);
    const rssAfter = rssOf(server.pid);
    const perStream = (rssAfter - rssBefore) / STREAMS;

    const latencies: number[][] = [];
    /** The same, from the POST's answer: the fan-out alone (the creation of 10,000 deliveries is its own row). */
    const afterAnswer: number[][] = [];
    const creations: number[] = [];
    for (let round = 1; round <= NOTICE_ROUNDS; round++) {
      const started = epochMs();
      await admin(server, 'POST', '/api/distributions', { contentId: bench.content.id, groups: [group.id], note: `notice round ${round}` });
      const answered = epochMs();
      creations.push(answered - started);
      const deadline = Date.now() + 60_000;
      let counts = await load.ask({ type: 'counts' }, 'counts');
      while ((counts.waiting[round - 1] ?? 0) < STREAMS && Date.now() < deadline) {
        await sleep(100);
        counts = await load.ask({ type: 'counts' }, 'counts');
      }
      const { at } = await load.ask({ type: 'arrivals', n: round }, 'arrivals');
      const got = at.filter((t) => t > 0);
      if (got.length < STREAMS) throw new Error(`round ${round}: ${got.length} of ${STREAMS} streams got the notice within 60 s`);
      latencies.push(got.map((t) => t - started));
      afterAnswer.push(got.map((t) => t - answered));
    }
    const p99s = summarize(latencies.map((round) => percentile(round, 99)));
    const p50s = summarize(latencies.map((round) => percentile(round, 50)));
    const fanOut = summarize(afterAnswer.map((round) => percentile(round, 99)));
    const creation = summarize(creations);

    const streamingCpu = await cpuOver(server.pid, IDLE_WINDOW_MS);
    const heartbeatCpu = Math.max(0, streamingCpu - idleCpu);
    const atDefault = heartbeatCpu * (BENCH_HEARTBEAT_MS / DEFAULT_HEARTBEAT_MS);
    const counts = await load.ask({ type: 'counts' }, 'counts');

    bench.rows.push({
      name: `${STREAMS.toLocaleString('en-US')} agents connected to one server (idle event streams, one load process)`,
      dcx: `server RSS +${((rssAfter - rssBefore) / 1e6).toFixed(1)} MB: ${(perStream / KiB).toFixed(1)} KiB per stream`,
      baseline: `server RSS before: ${(rssBefore / 1e6).toFixed(1)} MB; ${opened.seconds.toFixed(1)} s to open all (signed, ${OPEN_CONCURRENCY} at a time)`,
      ratio: '–',
      target: '<= 10 KiB per idle stream',
      met: perStream <= 10 * KiB,
    });
    bench.rows.push({
      name: `\`waiting\` notice to all ${STREAMS.toLocaleString('en-US')} after a distribution's creation`,
      dcx: `p99 ${p99s.median.toFixed(0)} ms (${p99s.min.toFixed(0)}–${p99s.max.toFixed(0)}), p50 ${p50s.median.toFixed(0)} ms, from the POST's start`,
      baseline:
        `POST /api/distributions to ${STREAMS.toLocaleString('en-US')} itself: ${creation.median.toFixed(0)} ms; ` +
        `p99 from its answer: ${fanOut.median.toFixed(0)} ms (${fanOut.min.toFixed(0)}–${fanOut.max.toFixed(0)})`,
      ratio: '–',
      target: 'p99 <= 2 s',
      met: p99s.median <= 2000,
    });
    bench.rows.push({
      name: `heartbeats of ${STREAMS.toLocaleString('en-US')} streams, CPU of the server`,
      dcx: `${(atDefault * 100).toFixed(2)}% of one core at the default ${DEFAULT_HEARTBEAT_MS / 1000} s (measured at ${BENCH_HEARTBEAT_MS} ms: ${(heartbeatCpu * 100).toFixed(2)}%)`,
      baseline: `idle server, no stream: ${(idleCpu * 100).toFixed(2)}% of one core`,
      ratio: '–',
      target: '< 5% of one core',
      met: atDefault < 0.05,
    });
    bench.notes.push(
      `Event streams: ${Math.ceil(STREAMS * WARM_UP_SHARE)} streams opened and closed first (warm-up); RSS read from ` +
        `/proc/<pid>/status then and ${SETTLE_MS / 1000} s after the last of the ${STREAMS.toLocaleString('en-US')} opened; ` +
        `notice latency = arrival of the \`waiting\` event in the load process minus the start of POST /api/distributions ` +
        `(same clock), ${NOTICE_ROUNDS} rounds, p99 of each round; heartbeat CPU = the server's utime+stime from /proc over ` +
        `${IDLE_WINDOW_MS / 1000} s with the streams open and INBOX_HEARTBEAT=${BENCH_HEARTBEAT_MS}ms, minus the same window ` +
        `with no stream, scaled by ${BENCH_HEARTBEAT_MS}/${DEFAULT_HEARTBEAT_MS} to the default interval (it writes the same bytes ` +
        `to every stream from one timer, so its cost is proportional to the rate). The load process counted ` +
        `${counts.heartbeats.toLocaleString('en-US')} heartbeats; ${counts.open.toLocaleString('en-US')} streams still open at the end.`,
    );
  } finally {
    await load.ask({ type: 'close' }, 'closed').catch(() => undefined);
    load.stop();
  }
}

/** A signed JSON request of one agent, on fetch's keep-alive pool (the request key computed once per agent). */
interface CycleAgent {
  identity: ClientIdentity;
  key: Buffer;
}

function signedHeaders(agent: CycleAgent, keyId: string, method: string, path: string, body?: Buffer): Record<string, string> {
  return {
    [CLIENT_KEY_HEADER]: agent.identity.publicKey.toString('base64url'),
    [REQUEST_AUTH_HEADER]: signRequest(agent.key, keyId, { method, path, body }),
    ...(body ? { 'content-type': 'application/json' } : {}),
  };
}

interface NextAnswer {
  acked: { status: string } | null;
  next: { deliveryId: string; bundleUrl: string } | null;
}

/** (b) pull next with deletion: lease, pull the 10 KiB bundle, ack its confirmation with the next lease; 50 agents. */
async function cycles(bench: InboxBench, server: RunningServer): Promise<void> {
  console.log(`bench: pull-next-with-deletion cycles of 10 KiB documents with ${AGENTS} agents`);
  const { identities } = await enrolled(bench.db, AGENTS, CYCLE_LABEL);
  const group = await admin<{ id: string }>(server, 'POST', '/api/groups', { name: CYCLE_LABEL, selector: { labels: [CYCLE_LABEL] } });
  // Enough for every run and the warm-up, plus the lease each agent carries from one run into the next.
  for (let i = 0; i < (bench.runs + 1) * CYCLES_PER_AGENT + 1; i++) {
    await admin(server, 'POST', '/api/distributions', { contentId: bench.content.id, groups: [group.id] });
  }
  const pin = await pinOf(server);
  const sealKey = Buffer.from(pin.sealKey, 'base64url');
  const agents: CycleAgent[] = identities.map((identity) => ({
    identity,
    key: clientRequestAuthKey(identity.privateKey, identity.publicKey, sealKey),
  }));
  const statuses: Record<string, number> = {};

  const next = async (agent: CycleAgent, ack?: { deliveryId: string; confirmation: string }): Promise<NextAnswer> => {
    const body = Buffer.from(JSON.stringify(ack ? { ack } : {}));
    const response = await fetch(`${server.url}/api/inbox/next`, {
      method: 'POST',
      headers: signedHeaders(agent, pin.keyId, 'POST', '/api/inbox/next', body),
      body,
    });
    if (response.status !== 200) throw new Error(`next: ${response.status} ${await response.text()}`);
    const answer = (await response.json()) as NextAnswer;
    if (answer.acked) statuses[answer.acked.status] = (statuses[answer.acked.status] ?? 0) + 1;
    return answer;
  };
  /** The pull and the client's part: open the plug-in data, check the content's SHA-256, build the confirmation. */
  const pull = async (agent: CycleAgent, leased: { deliveryId: string; bundleUrl: string }) => {
    const path = new URL(leased.bundleUrl).pathname;
    const response = await fetch(`${server.url}${path}`, { headers: signedHeaders(agent, pin.keyId, 'GET', path) });
    if (response.status !== 200) throw new Error(`pull: ${response.status}`);
    const [plugin, content] = storedEntries(Buffer.from(await response.arrayBuffer()));
    const { data } = openPluginData(plugin, { identity: agent.identity });
    const digest = createHash('sha256').update(content).digest('hex');
    if (digest !== data.files[0].sha256) throw new Error(`pull of ${leased.deliveryId}: digest mismatch`);
    const frame = encodeConfirmation(
      { deliveryId: data.deliveryId, clientFingerprint: agent.identity.fingerprint, digests: [digest] },
      data.confirmSecret,
    );
    return { deliveryId: leased.deliveryId, confirmation: frame.toString('base64') };
  };

  /** Milliseconds spent in each step, summed over every agent (where a cycle's time goes). */
  const spent = { pull: 0, next: 0 };
  const timed = async <T>(step: keyof typeof spent, work: () => Promise<T>): Promise<T> => {
    const started = epochMs();
    try {
      return await work();
    } finally {
      spent[step] += epochMs() - started;
    }
  };
  const held = new Map<CycleAgent, { deliveryId: string; bundleUrl: string }>();
  for (const agent of agents) held.set(agent, (await next(agent)).next!);
  const rates: number[] = [];
  for (let run = 0; run <= bench.runs; run++) {
    const started = epochMs();
    await Promise.all(
      agents.map(async (agent) => {
        for (let k = 0; k < CYCLES_PER_AGENT; k++) {
          const ack = await timed('pull', () => pull(agent, held.get(agent)!));
          const answer = await timed('next', () => next(agent, ack));
          if (!answer.next) throw new Error('the inbox ran dry before the run ended');
          held.set(agent, answer.next);
        }
      }),
    );
    const seconds = (epochMs() - started) / 1000;
    if (run > 0) rates.push((AGENTS * CYCLES_PER_AGENT) / seconds); // run 0: warm-up
  }
  const rate = summarize(rates);
  const acked = (bench.runs + 1) * AGENTS * CYCLES_PER_AGENT;
  const tcp = bench.tcpConfirmations;
  const perSecond = (s: Summary) =>
    `${Math.round(s.median).toLocaleString('en-US')}/s (${Math.round(s.min).toLocaleString('en-US')}–${Math.round(s.max).toLocaleString('en-US')})`;
  bench.rows.push({
    name: `pull-next-with-deletion cycles (lease + pull 10 KiB bundle + ack with its confirmation), ${AGENTS} agents`,
    dcx: `${perSecond(rate)} cycles`,
    baseline: tcp
      ? `confirmations over TCP, 100 clients, this run: ${perSecond(tcp)}`
      : 'the TCP confirmations row did not run (BENCH_SECTIONS)',
    ratio: tcp ? `${(rate.median / tcp.median).toFixed(2)}x` : '–',
    target: '>= 0.5x the TCP confirmations row',
    met: tcp !== null && rate.median / tcp.median >= 0.5 && statuses.accepted === acked,
  });
  bench.notes.push(
    `Pull next with deletion: ${AGENTS} agents in the bench process on fetch's keep-alive pool, ${CYCLES_PER_AGENT} cycles each per run; ` +
      `a cycle is the signed bundle pull (the first pull seals it), the client's part (entries read from the ZIP's local headers, plug-in data opened, SHA-256 checked, ` +
      `confirmation built) and the signed next that acks it and leases the following one; acks answered ${JSON.stringify(statuses)}; ` +
      `mean time per step as an agent waited for it: pull ${(spent.pull / acked).toFixed(1)} ms, next ${(spent.next / acked).toFixed(1)} ms.`,
  );
}
