/*
 * Issue 16's row: confirmations POSTed to /api/confirmations against confirmations on the TCP port, both with
 * 100 concurrent clients on the same server and database, in alternating runs (TCP: bench/support/load.ts
 * confirmLoad; HTTP: wrk, so that the load generator costs little of the 2 cores).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER, CONFIRMATION_MEDIA_TYPE, CONFIRMATIONS_PATH } from '../src/protocol/constants.js';
import { ClientIdentity, generateClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import type { RunningServer } from '../test/support/server-process.js';
import { confirmLoad, wrk } from './support/load.js';
import type { Row } from './support/report.js';
import { summarize, Summary } from './support/stats.js';

const CLIENTS = 100;
const TCP_PER_RUN = 3_000;
/** Fresh frames for each wrk run of HTTP_SECONDS. */
const HTTP_PER_RUN = 6_000;
const HTTP_SECONDS = 2;
const WRK_THREADS = 2;
/** Bundles requested at once while the deliveries to confirm are issued. */
const ISSUING_CONCURRENCY = 50;
const IDENTITIES = 50;
const LOAD_TIMEOUT_MS = 120_000;
const TARGET_RATIO = 0.5;

export interface HttpsConfirmationBench {
  server: RunningServer;
  db: pg.Client;
  runs: number;
  workDir: string;
  content: { id: string; bundleUrl: string; sha256: string };
  rows: Row[];
  notes: string[];
}

/** Issues `count` deliveries of the content (GET its bundle with a client key) and returns their confirmation frames. */
async function issueFrames(bench: HttpsConfirmationBench, count: number): Promise<{ deliveryId: string; frame: Buffer }[]> {
  const identities = Array.from({ length: IDENTITIES }, () => generateClientIdentity());
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const identity = identities[i % identities.length];
      const response = await fetch(bench.content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
      if (!response.ok) throw new Error(`GET ${bench.content.bundleUrl}: ${response.status}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: ISSUING_CONCURRENCY }, worker));
  const identityOf = new Map<string, ClientIdentity>(identities.map((identity) => [identity.fingerprint, identity]));
  // The "sent" mark follows the last byte: wait until every delivery has it.
  for (let tries = 0; tries < 50; tries++) {
    const { rows } = await bench.db.query<{ plugin_data: Buffer; client_fingerprint: string }>(
      `SELECT plugin_data, client_fingerprint FROM deliveries WHERE content_id = $1 AND client_fingerprint = ANY($2) AND status = 'sent'`,
      [bench.content.id, [...identityOf.keys()]],
    );
    if (rows.length >= count || tries === 49) {
      return rows.map(({ plugin_data, client_fingerprint }) => {
        const identity = identityOf.get(client_fingerprint)!;
        const { data } = openPluginData(plugin_data, { identity });
        const frame = encodeConfirmation(
          { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [bench.content.sha256] },
          data.confirmSecret,
        );
        return { deliveryId: data.deliveryId, frame };
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return [];
}

/**
 * A wrk script POSTing each frame of `framesFile` (one hex frame a line) once, each wrk thread its own share
 * (line n goes to thread n mod `threads`); formatted once in init, as headerCycleScript does. A thread that
 * runs out starts its share again (then answered "already confirmed"; the caller counts what was accepted).
 */
function framePostScript(framesFile: string, threads: number): string {
  return `local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
local requests = {}
function init(args)
  local n = 0
  for line in io.lines(${JSON.stringify(framesFile)}) do
    if n % ${threads} == id then
      local frame = line:gsub("..", function(cc) return string.char(tonumber(cc, 16)) end)
      requests[#requests + 1] = wrk.format("POST", nil, { ["Content-Type"] = ${JSON.stringify(CONFIRMATION_MEDIA_TYPE)} }, frame)
    end
    n = n + 1
  end
end
local i = 0
function request()
  i = i % #requests + 1
  return requests[i]
end
`;
}

/** How many of the deliveries `ids` the server has confirmed. */
async function confirmedAmong(db: pg.Client, ids: string[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM deliveries WHERE id = ANY($1::uuid[]) AND status = 'confirmed'`,
    [ids],
  );
  return Number(rows[0].n);
}

const rate = (s: Summary) =>
  `${Math.round(s.median).toLocaleString('en-US')}/s (${Math.round(s.min).toLocaleString('en-US')}–${Math.round(s.max).toLocaleString('en-US')})`;

export async function benchHttpsConfirmations(bench: HttpsConfirmationBench): Promise<void> {
  console.log(`bench: confirmations over HTTP (POST ${CONFIRMATIONS_PATH}, wrk) against the TCP port, ${CLIENTS} clients each`);
  // One warm-up pair, then `runs` measured pairs; every run confirms deliveries of its own.
  const pairs = bench.runs + 1;
  const perPair = TCP_PER_RUN + HTTP_PER_RUN;
  const issued = await issueFrames(bench, perPair * pairs);
  if (issued.length < perPair * pairs) throw new Error(`only ${issued.length} of ${perPair * pairs} deliveries to confirm`);
  const tcp: { rate: number[]; p99: number[] } = { rate: [], p99: [] };
  const http: { rate: number[]; p99: number[] } = { rate: [], p99: [] };
  const statuses: Record<string, number> = {};
  let httpRequests = 0;
  let httpConfirmed = 0;
  let httpFailures = 0;
  const url = new URL(CONFIRMATIONS_PATH, bench.server.url).href;
  for (let i = 0; i < pairs; i++) {
    const pair = issued.slice(i * perPair, (i + 1) * perPair);
    const overTcp = await confirmLoad(
      bench.server.confirmPort,
      pair.slice(0, TCP_PER_RUN).map((d) => d.frame),
      CLIENTS,
      LOAD_TIMEOUT_MS,
    );
    for (const [name, n] of Object.entries(overTcp.statuses)) statuses[name] = (statuses[name] ?? 0) + n;
    const overHttp = pair.slice(TCP_PER_RUN);
    const framesFile = join(bench.workDir, `https-confirm-${i}.hex`);
    const script = join(bench.workDir, `https-confirm-${i}.lua`);
    await writeFile(framesFile, overHttp.map((d) => d.frame.toString('hex')).join('\n') + '\n');
    await writeFile(script, framePostScript(framesFile, WRK_THREADS));
    const result = await wrk(url, { connections: CLIENTS, threads: WRK_THREADS, seconds: HTTP_SECONDS, script });
    if (i === 0) continue; // warm-up
    httpRequests += result.requests;
    httpFailures += result.non2xx + result.socketErrors;
    httpConfirmed += await confirmedAmong(
      bench.db,
      overHttp.map((d) => d.deliveryId),
    );
    tcp.rate.push(overTcp.perSecond);
    tcp.p99.push(overTcp.p99Ms);
    http.rate.push(result.requestsPerSecond);
    http.p99.push(result.p99Ms);
  }
  const httpRate = summarize(http.rate);
  const tcpRate = summarize(tcp.rate);
  const ratio = httpRate.median / tcpRate.median;
  bench.rows.push({
    name: `confirmations POSTed to ${CONFIRMATIONS_PATH} vs the TCP port, ${CLIENTS} concurrent clients each`,
    dcx: `HTTP: ${rate(httpRate)}, p99 ${summarize(http.p99).median.toFixed(1)} ms`,
    baseline: `TCP port, same run: ${rate(tcpRate)}, p99 ${summarize(tcp.p99).median.toFixed(1)} ms`,
    ratio: `${ratio.toFixed(2)}x TCP`,
    target: `>= ${TARGET_RATIO}x TCP`,
    met: ratio >= TARGET_RATIO && httpFailures === 0 && (statuses.accepted ?? 0) === TCP_PER_RUN * pairs,
  });
  bench.notes.push(
    `HTTPS confirmations: runs alternating ${TCP_PER_RUN.toLocaleString('en-US')} TCP confirmations (answers ${JSON.stringify(statuses)}) ` +
      `and ${HTTP_SECONDS} s of wrk POSTing fresh frames (${httpRequests.toLocaleString('en-US')} answered in the measured runs, ` +
      `${httpFailures} errors or non-2xx; ${httpConfirmed.toLocaleString('en-US')} of their deliveries confirmed on the server, which also ` +
      'decides the requests wrk cut off when it stopped). Plain HTTP on loopback: TLS would end at the reverse proxy in front of the web port.',
  );
}
