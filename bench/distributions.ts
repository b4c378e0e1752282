/*
 * Issue 15's figures: a distribution to 100,000 recipients against a plain INSERT … SELECT of as many rows,
 * its status summary and first "not received" page at 100,000 deliveries (p99, with the plans), and
 * `dcx inbox` of 1,000 documents against `dcx fetch` of 1,000 links in one process.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { summaryStatements } from '../src/server/distributions/distribution.repository.js';
import { newClientHome } from '../test/support/cli-process.js';
import type { RunningServer } from '../test/support/server-process.js';
import { run, RunResult } from './support/proc.js';
import type { Row } from './support/report.js';
import { percentile, summarize } from './support/stats.js';

const RECIPIENTS = 100_000;
const INBOX_DOCUMENTS = 1_000;
const SUMMARY_REQUESTS = 200;
const LABEL = 'bench-100k';

export interface DistributionBench {
  server: RunningServer;
  db: pg.Client;
  workDir: string;
  runs: number;
  content: { id: string; bundleUrl: string };
  rows: Row[];
  notes: string[];
  dcxCli: (args: string[], env: Record<string, string>, timeoutMs: number) => Promise<RunResult>;
}

async function admin<T>(bench: DistributionBench, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${bench.server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${bench.server.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function benchDistributions(bench: DistributionBench): Promise<void> {
  console.log(`bench: a distribution to ${RECIPIENTS.toLocaleString('en-US')} recipients, its summary, dcx inbox of ${INBOX_DOCUMENTS}`);
  const distributionId = await creation(bench);
  await summary(bench, distributionId);
  await inbox(bench);
}

/** POST /api/distributions to a label group of 100,000, timed, beside INSERT … SELECT of 100,000 rows in the same database. */
async function creation(bench: DistributionBench): Promise<string> {
  await bench.db.query(
    `INSERT INTO recipients (name, email, labels) SELECT 'Recipient ' || i, 'r' || i || '@example.com', ARRAY[$1] FROM generate_series(1, $2) i`,
    [LABEL, RECIPIENTS],
  );
  const group = await admin<{ id: string }>(bench, 'POST', '/api/groups', { name: LABEL, selector: { labels: [LABEL] } });
  await bench.db.query(
    `CREATE TABLE bench_plain_rows (id uuid PRIMARY KEY, content_id uuid NOT NULL, recipient_id uuid NOT NULL, status text NOT NULL,
       issued_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)`,
  );
  const ours: number[] = [];
  const theirs: number[] = [];
  let last = '';
  for (let i = 0; i <= bench.runs; i++) {
    const plainStarted = process.hrtime.bigint();
    await bench.db.query(
      `INSERT INTO bench_plain_rows SELECT encode(gen_random_bytes(16), 'hex')::uuid, $1, id, 'pending', now(), now() + interval '1 day'
         FROM recipients WHERE labels @> ARRAY[$2]`,
      [bench.content.id, LABEL],
    );
    const plainMs = Number(process.hrtime.bigint() - plainStarted) / 1e6;
    const started = process.hrtime.bigint();
    const created = await admin<{ id: string; counts: { total: number } }>(bench, 'POST', '/api/distributions', {
      contentId: bench.content.id,
      groups: [group.id],
      note: `bench run ${i}`,
      dueAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (created.counts.total !== RECIPIENTS) throw new Error(`distribution has ${created.counts.total} recipients, not ${RECIPIENTS}`);
    last = created.id;
    if (i === 0) continue; // warm-up
    ours.push(ms);
    theirs.push(plainMs);
  }
  const dcx = summarize(ours);
  const plain = summarize(theirs);
  bench.rows.push({
    name: `a distribution to ${RECIPIENTS.toLocaleString('en-US')} recipients (a label group), POST /api/distributions`,
    dcx: `${(dcx.median / 1000).toFixed(2)} s (${(dcx.min / 1000).toFixed(2)}–${(dcx.max / 1000).toFixed(2)})`,
    baseline: `plain INSERT … SELECT of ${RECIPIENTS.toLocaleString('en-US')} rows, same database: ${(plain.median / 1000).toFixed(2)} s`,
    ratio: `${(dcx.median / plain.median).toFixed(2)}x the time`,
    target: '<= 3 s and <= 3x the plain INSERT',
    met: dcx.median <= 3000 && dcx.median <= 3 * plain.median,
  });
  return last;
}

/** The summary and first page of "not received" of one distribution at 100,000 deliveries, p99 of sequential requests. */
async function summary(bench: DistributionBench, distributionId: string): Promise<void> {
  const path = `/api/distributions/${distributionId}?status=unconfirmed&limit=50`;
  const latencies: number[] = [];
  for (let i = 0; i < SUMMARY_REQUESTS + 20; i++) {
    const started = process.hrtime.bigint();
    const view = await admin<{ counts: { unconfirmed: number }; recipients: { items: unknown[] } }>(bench, 'GET', path);
    if (view.recipients.items.length !== 50 || view.counts.unconfirmed !== RECIPIENTS)
      throw new Error(`unexpected summary: ${JSON.stringify(view.counts)}`);
    if (i >= 20) latencies.push(Number(process.hrtime.bigint() - started) / 1e6); // 20 warm-up requests
  }
  const p99 = percentile(latencies, 99);
  bench.rows.push({
    name: `a distribution's counts + first page of "not received" (50 rows) at ${RECIPIENTS.toLocaleString('en-US')} deliveries`,
    dcx: `p99 ${p99.toFixed(1)} ms, median ${percentile(latencies, 50).toFixed(1)} ms (${SUMMARY_REQUESTS} sequential requests)`,
    baseline: '–',
    ratio: '–',
    target: 'p99 < 50 ms',
    met: p99 < 50,
  });
  for (const statement of await explainedStatements(bench, distributionId)) bench.notes.push(statement);
}

/** EXPLAIN ANALYZE of the statements that answer the summary, as the server's repository runs them. */
async function explainedStatements(bench: DistributionBench, distributionId: string): Promise<string[]> {
  const plans: string[] = [];
  for (const [name, { sql, params }] of Object.entries(summaryStatements(distributionId, 50))) {
    const { rows } = await bench.db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, COSTS OFF) ${sql}`, params);
    plans.push(
      `plan of the ${name} (${RECIPIENTS.toLocaleString('en-US')} deliveries): ${rows.map((r) => r['QUERY PLAN'].trim()).join(' / ')}`,
    );
  }
  return plans;
}

/** `dcx inbox` of 1,000 documents addressed to one enrolled recipient, against 1,000 `dcx fetch` in one process. */
async function inbox(bench: DistributionBench): Promise<void> {
  const home = await newClientHome();
  const code = await admin<{ code: string }>(bench, 'POST', '/api/recipients/enrolment-codes', { name: 'Bench Reader', expiresIn: '1h' });
  const enrolled = await bench.dcxCli(['enrol', bench.server.url, '--code', code.code, '--json'], { DCX_HOME: home }, 60_000);
  if (enrolled.code !== 0) throw new Error(`dcx enrol failed: ${enrolled.stderr}`);
  const { recipientId } = JSON.parse(enrolled.stdout) as { recipientId: string };
  for (let i = 0; i < INBOX_DOCUMENTS; i++) {
    await admin(bench, 'POST', '/api/distributions', { contentId: bench.content.id, recipients: [recipientId], note: `document ${i}` });
  }
  const inboxOut = await mkdtemp(join(bench.workDir, 'inbox-'));
  const pulled = await bench.dcxCli(['inbox', bench.server.url, '--out', inboxOut, '--json'], { DCX_HOME: home }, 600_000);
  if (pulled.code !== 0) throw new Error(`dcx inbox failed (${pulled.code}): ${pulled.stderr.slice(0, 500)}`);

  const fetchHome = await newClientHome();
  const fetchOut = await mkdtemp(join(bench.workDir, 'fetch-loop-'));
  const loop = await run(
    process.execPath,
    [join(import.meta.dirname, 'baselines', 'fetch-loop.js'), bench.content.bundleUrl, String(INBOX_DOCUMENTS), fetchOut],
    { timeoutMs: 600_000, env: { PATH: process.env.PATH, HOME: process.env.HOME, DCX_HOME: fetchHome } },
  );
  if (loop.code !== 0) throw new Error(`the fetch loop failed: ${loop.stderr.slice(0, 500)}`);
  const { ms: loopMs } = JSON.parse(loop.stdout) as { ms: number };
  const inboxRate = INBOX_DOCUMENTS / (pulled.ms / 1000);
  const fetchRate = INBOX_DOCUMENTS / (loopMs / 1000);
  bench.rows.push({
    name: `\`dcx inbox\`: ${INBOX_DOCUMENTS.toLocaleString('en-US')} 10 KiB documents addressed to one recipient, one pass`,
    dcx: `${inboxRate.toFixed(0)} documents/s (${(pulled.ms / 1000).toFixed(1)} s, process start included)`,
    baseline: `\`dcx fetch\` of ${INBOX_DOCUMENTS.toLocaleString('en-US')} links in one process: ${fetchRate.toFixed(0)}/s`,
    ratio: `${(inboxRate / fetchRate).toFixed(2)}x`,
    target: '>= 0.5x dcx fetch',
    met: inboxRate / fetchRate >= 0.5,
  });
}
