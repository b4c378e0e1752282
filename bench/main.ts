/*
 * `npm run bench`: DCX against baselines on this machine, every figure and its baseline in one run.
 * Starts its own nginx, PostgreSQL database and DCX server; stops all of them however it ends.
 * BENCH_RUNS (default 5) runs per figure; BENCH_SECTIONS=a,b limits the sections (development only).
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { CLIENT_KEY_HEADER } from '../src/protocol/constants.js';
import { generateClientIdentity } from '../src/protocol/keys.js';
import { openPluginData } from '../src/protocol/plugin-data.js';
import { newClientHome } from '../test/support/cli-process.js';
import { createTestDatabase } from '../test/support/database.js';
import { RunningServer, ROOT, startServer } from '../test/support/server-process.js';
import { confirmLoad, headerCycleScript, wrk } from './support/load.js';
import { benchDistributions } from './distributions.js';
import { benchHttpsConfirmations } from './https-confirmations.js';
import { benchInboxEvents } from './inbox-events.js';
import { startNginx } from './support/nginx.js';
import { startPlainNest } from './support/plain-nest.js';
import { Cleanup, ensureCommand, killRunning, run, runOk, RunResult } from './support/proc.js';
import { formatReport, Row } from './support/report.js';
import { GiB, KiB, MB, MiB, percentile, RssSampler, summarize, Summary } from './support/stats.js';

const RUNS = Math.max(1, Math.min(20, Number(process.env.BENCH_RUNS ?? 5)));
const SECTIONS = new Set(
  (process.env.BENCH_SECTIONS ?? 'stream,fetch,small,confirm,https-confirm,inbox,inbox-next,concurrent,distributions,zip64').split(','),
);
const OVERALL_DEADLINE_MS = 20 * 60_000;
const HTTP_SECONDS = 5;
const CONFIRMATIONS_PER_RUN = 8_000;
const CONCURRENT_FETCHES = 200;
const ZIP64_SIZE = 4 * GiB + 512 * MiB;

const cleanup = new Cleanup();
const rows: Row[] = [];
const notes: string[] = [];

/** Random bytes, written in 16 MiB blocks (repeated: nothing on the path compresses). */
async function randomFile(path: string, size: number): Promise<void> {
  const block = randomFillSync(Buffer.alloc(Math.min(size, 16 * MiB)));
  const file = await open(path, 'w');
  try {
    for (let written = 0; written < size;) {
      const n = Math.min(block.length, size - written);
      await file.write(block, 0, n, written);
      written += n;
    }
  } finally {
    await file.close();
  }
}

/** A sparse file of `size` bytes with random 1 MiB islands at the start, the middle and the end. */
async function sparseFile(path: string, size: number): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.truncate(size);
    for (const at of [0, Math.floor(size / 2), size - MiB]) await file.write(randomBytes(MiB), 0, MiB, at);
  } finally {
    await file.close();
  }
}

/** The real `dcx` CLI as a process (as test/support/cli-process.ts runs it), timed and killed after `timeoutMs`. */
function dcxCli(args: string[], env: Record<string, string>, timeoutMs: number): Promise<RunResult> {
  return run(process.execPath, [join(ROOT, 'dist/src/client/main.js'), ...args], {
    timeoutMs,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
}

interface Published {
  id: string;
  bundleUrl: string;
  sha256: string;
  size: number;
}

async function publish(server: RunningServer, path: string): Promise<Published> {
  const result = await dcxCli(
    ['publish', path, '--server', server.url, '--json'],
    { DCX_HOME: await newClientHome(), DCX_ADMIN_TOKEN: server.adminToken },
    600_000,
  );
  if (result.code !== 0) throw new Error(`dcx publish ${path} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Published;
}

/** curl a URL to `out`; returns bytes and wall seconds. */
async function curl(url: string, out: string, headers: string[] = []): Promise<{ bytes: number; seconds: number }> {
  const result = await runOk('curl', ['-sS', '--fail', '-o', out, '-w', '%{size_download}', ...headers.flatMap((h) => ['-H', h]), url], {
    timeoutMs: 300_000,
  });
  return { bytes: Number(result.stdout), seconds: result.ms / 1000 };
}

const gbps = (s: Summary) => `${(s.median / 1e9).toFixed(2)} GB/s (${(s.min / 1e9).toFixed(2)}–${(s.max / 1e9).toFixed(2)})`;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const perSecond = (s: Summary, unit: string) =>
  `${Math.round(s.median).toLocaleString('en-US')} ${unit}/s ` +
  `(${Math.round(s.min).toLocaleString('en-US')}–${Math.round(s.max).toLocaleString('en-US')})`;
const ms = (s: Summary) => `p99 ${s.median.toFixed(1)} ms (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
const ratio = (a: Summary, b: Summary) => `${(a.median / b.median).toFixed(2)}x`;

async function bench(): Promise<void> {
  const started = new Date();
  const loadAtStart = loadavg()[0];
  for (const [command, pkg] of [
    ['curl', 'curl'],
    ['wrk', 'wrk'],
    ['unzip', 'unzip'],
    ['pgbench', 'postgresql-client'],
  ])
    await ensureCommand(command, pkg);
  const workDir = await mkdtemp(join(tmpdir(), 'dcx-bench-'));
  cleanup.add('work directory', () => rm(workDir, { recursive: true, force: true }));
  const dataDir = join(workDir, 'server');
  await mkdir(dataDir);

  console.log(`bench: preparing data under ${workDir}`);
  const files = { big: join(workDir, 'big.bin'), medium: join(workDir, 'medium.bin'), small: join(workDir, 'small.bin') };
  await randomFile(files.big, GiB);
  await randomFile(files.medium, 10 * MiB);
  await randomFile(files.small, 10 * KiB);

  const nginx = await startNginx(workDir, cleanup);
  const database = await createTestDatabase();
  cleanup.add('database', () => database.drop());
  const db = new pg.Client({ connectionString: database.url });
  await db.connect();
  cleanup.add('database client', () => db.end());

  const adminToken = randomBytes(24).toString('base64url');
  // One DATA_DIR and database for every server start: contents uploaded once, then a fresh process.
  let serverStarts = 0;
  const startDcx = async (extraEnv: Record<string, string> = {}) => {
    const server = await startServer(
      'pglite',
      { DATABASE_URL: database.url, DATA_DIR: dataDir, ADMIN_TOKEN: adminToken, ...extraEnv },
      { logFile: join(workDir, `server-${++serverStarts}.log`) },
    );
    cleanup.add('dcx server', () => server.stop());
    return { ...server, adminToken }; // ours, not the one the helper generated (overridden above)
  };

  let server = await startDcx();
  console.log('bench: uploading contents through dcx publish');
  const big = await publish(server, files.big);
  const medium = await publish(server, files.medium);
  const small = await publish(server, files.small);
  await server.stop();
  server = await startDcx(); // measured from a fresh process: the uploads leave nothing in its memory
  for (const content of [big, medium, small]) content.bundleUrl = `${server.url}/api/contents/${content.id}/bundle`; // its new port
  const sampler = new RssSampler(server.pid);

  // --- memory while serving 10 MiB, then 1 GiB; and 1 GiB throughput against nginx ---
  if (SECTIONS.has('stream')) {
    console.log('bench: 1 GiB bundle with curl -o /dev/null, against nginx (sendfile)');
    const mediumPeaks: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      sampler.start();
      await curl(medium.bundleUrl, '/dev/null');
      mediumPeaks.push(sampler.stop());
    }
    const mediumHwm = sampler.highWaterMark();
    await curl(big.bundleUrl, join(nginx.root, 'big.dcx'));
    await curl(small.bundleUrl, join(nginx.root, 'small.dcx'));
    const bigBundle = (await stat(join(nginx.root, 'big.dcx'))).size;

    const nginxRates: number[] = [];
    const dcxRates: number[] = [];
    const bigPeaks: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const baseline = await curl(`${nginx.url}/big.dcx`, '/dev/null');
      sampler.start();
      const ours = await curl(big.bundleUrl, '/dev/null');
      bigPeaks.push(sampler.stop());
      if (ours.bytes !== bigBundle || baseline.bytes !== bigBundle)
        throw new Error(`sizes differ: ${ours.bytes}, ${baseline.bytes}, ${bigBundle}`);
      if (i === 0) continue; // warm-up
      nginxRates.push(baseline.bytes / baseline.seconds);
      dcxRates.push(ours.bytes / ours.seconds);
    }
    const bigHwm = sampler.highWaterMark();
    const dcxRate = summarize(dcxRates);
    const nginxRate = summarize(nginxRates);
    rows.push({
      name: '1 GiB bundle, `curl -o /dev/null` on loopback',
      dcx: gbps(dcxRate),
      baseline: `nginx sendfile, same file: ${gbps(nginxRate)}`,
      ratio: ratio(dcxRate, nginxRate),
      target: '>= 0.8x nginx',
      met: dcxRate.median / nginxRate.median >= 0.8,
    });
    const peak = Math.max(...bigPeaks, bigHwm);
    const mediumPeak = Math.max(...mediumPeaks, mediumHwm);
    rows.push({
      name: 'server peak RSS while serving the 1 GiB bundle',
      dcx: `${mb(peak)} (VmHWM ${mb(bigHwm)}; polled per run ${mb(Math.min(...bigPeaks))}–${mb(Math.max(...bigPeaks))})`,
      baseline: `10 MiB bundle: ${mb(mediumPeak)} (VmHWM ${mb(mediumHwm)})`,
      ratio: `+${mb(peak - mediumPeak)}`,
      target: '<= 150 MB, within 20 MB of the 10 MiB peak',
      met: peak <= 150 * MB && peak - mediumPeak <= 20 * MB,
    });
  }

  // --- dcx fetch of 1 GiB to disk against curl -o FILE from nginx ---
  if (SECTIONS.has('fetch')) {
    console.log('bench: dcx fetch of 1 GiB to disk, against curl -o FILE from nginx');
    if (!SECTIONS.has('stream')) await curl(big.bundleUrl, join(nginx.root, 'big.dcx'));
    const home = await newClientHome();
    cleanup.add('client home', () => rm(home, { recursive: true, force: true }));
    const dcxRates: number[] = [];
    const curlRates: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const out = await mkdtemp(join(workDir, 'out-'));
      const baseline = await curl(`${nginx.url}/big.dcx`, join(out, 'big.dcx'));
      await rm(join(out, 'big.dcx'));
      const result = await dcxCli(['fetch', big.bundleUrl, '--out', out, '--json'], { DCX_HOME: home }, 300_000);
      const report = result.code === 0 ? (JSON.parse(result.stdout) as { status: string; files: { sha256: string }[] }) : null;
      if (!report || report.status !== 'accepted' || report.files[0].sha256 !== big.sha256)
        throw new Error(`dcx fetch failed (${result.code}): ${result.stderr || result.stdout}`);
      await rm(out, { recursive: true, force: true });
      if (i === 0) continue; // warm-up; this one also pins the server key on first use
      curlRates.push(baseline.bytes / baseline.seconds);
      dcxRates.push(GiB / (result.ms / 1000));
    }
    const ours = summarize(dcxRates);
    const theirs = summarize(curlRates);
    rows.push({
      name: '`dcx fetch` of 1 GiB to disk (download, SHA-256, save, confirm)',
      dcx: gbps(ours),
      baseline: `\`curl -o FILE\` from nginx: ${gbps(theirs)}`,
      ratio: ratio(ours, theirs),
      target: '>= 0.8x curl from nginx',
      met: ours.median / theirs.median >= 0.8,
    });
  }

  // --- 10 KiB bundles, 50 connections; every one a delivery recorded in PostgreSQL ---
  // 50 clients, each with its own key (the server seals each bundle to its requester's key).
  const identities = Array.from({ length: 50 }, () => generateClientIdentity());
  const identityOf = new Map(identities.map((identity) => [identity.fingerprint, identity]));
  // pgbench's single-row UPDATE transactions: the database budget both the bundle and the confirmation rows are measured against.
  const pgbench = SECTIONS.has('small') || SECTIONS.has('confirm') ? await pgbenchUpdates(database.url, workDir, 10) : null;
  const pgbenchText = pgbench
    ? `pgbench, 1-row UPDATE transactions, 10 connections (the DCX pool size): ${perSecond(pgbench.tps, 'tx')}, ${ms(pgbench.p99)}`
    : '';
  if (SECTIONS.has('small') || SECTIONS.has('confirm')) {
    console.log('bench: 10 KiB bundles with 50 connections (wrk), against nginx, a plain NestJS handler and pgbench');
    const plainNest = await startPlainNest(workDir, [files.small], cleanup);
    const plainUrl = plainNest.urlOf(files.small);
    if (!SECTIONS.has('stream')) await curl(small.bundleUrl, join(nginx.root, 'small.dcx'));
    const clients = join(workDir, 'clients.lua');
    await writeFile(
      clients,
      headerCycleScript(
        CLIENT_KEY_HEADER,
        identities.map((identity) => identity.publicKey.toString('base64url')),
      ),
    );
    const countDeliveries = async () =>
      (
        await db.query<{ issued: string; sent: string; events: string }>(
          `SELECT count(*) AS issued, count(*) FILTER (WHERE status = 'sent') AS sent,
                  (SELECT count(*) FROM delivery_events e JOIN deliveries d2 ON d2.id = e.delivery_id
                    WHERE d2.content_id = $1 AND e.type = 'issued') AS events
             FROM deliveries WHERE content_id = $1`,
          [small.id],
        )
      ).rows[0];
    const load = { connections: 50, threads: 2, seconds: HTTP_SECONDS };
    await wrk(`${nginx.url}/small.dcx`, { ...load, seconds: 2 });
    await wrk(small.bundleUrl, { ...load, seconds: 2, script: clients });
    await wrk(plainUrl, { ...load, seconds: 2 });
    const before = await countDeliveries();
    const ours: { rps: number[]; p99: number[] } = { rps: [], p99: [] };
    const theirs: { rps: number[]; p99: number[] } = { rps: [], p99: [] };
    const plain: { rps: number[]; p99: number[] } = { rps: [], p99: [] };
    let requests = 0;
    let failures = 0;
    for (let i = 0; i < RUNS; i++) {
      const baseline = await wrk(`${nginx.url}/small.dcx`, load);
      theirs.rps.push(baseline.requestsPerSecond);
      theirs.p99.push(baseline.p99Ms);
      const team = await wrk(plainUrl, load);
      if (team.non2xx + team.socketErrors > 0)
        throw new Error(`the plain NestJS baseline failed ${team.non2xx + team.socketErrors} requests`);
      plain.rps.push(team.requestsPerSecond);
      plain.p99.push(team.p99Ms);
      const result = await wrk(small.bundleUrl, { ...load, script: clients });
      ours.rps.push(result.requestsPerSecond);
      ours.p99.push(result.p99Ms);
      requests += result.requests;
      failures += result.non2xx + result.socketErrors;
    }
    await new Promise((r) => setTimeout(r, 1000)); // the last "sent" updates of cut-off connections
    const after = await countDeliveries();
    const issued = Number(after.issued) - Number(before.issued);
    const sent = Number(after.sent) - Number(before.sent);
    const events = Number(after.events) - Number(before.events);
    const rate = summarize(ours.rps);
    const p99 = summarize(ours.p99);
    const recorded = failures === 0 && sent >= requests && events === issued;
    const worstP99 = `worst run p99 ${p99.max.toFixed(1)} ms`;
    rows.push({
      name: '10 KiB bundles, 50 connections, each a delivery recorded in PostgreSQL',
      dcx: `${perSecond(rate, 'bundles')}, ${ms(p99)}`,
      baseline: `${pgbenchText}; nginx, 10 KiB file: ${perSecond(summarize(theirs.rps), 'req')}, ${ms(summarize(theirs.p99))}`,
      ratio: `${ratio(rate, pgbench!.tps)} pgbench, ${ratio(rate, summarize(theirs.rps))} nginx; ${worstP99}`,
      target: '>= 0.5x pgbench, p99 < 50 ms',
      met: rate.median / pgbench!.tps.median >= 0.5 && p99.median < 50 && recorded,
    });
    const plainRate = summarize(plain.rps);
    rows.push({
      name: '10 KiB bundles against what a team would write without DCX (bench/baselines/plain-nest.ts)',
      dcx: `${perSecond(rate, 'bundles')} (sealed, signed, recorded with events)`,
      baseline: `plain NestJS on Express, TypeORM insert per download, file streamed: ${perSecond(plainRate, 'req')}, ${ms(summarize(plain.p99))}`,
      ratio: ratio(rate, plainRate),
      target: '>= 1.0x the plain NestJS handler',
      met: rate.median / plainRate.median >= 1 && recorded,
    });
    notes.push(
      `10 KiB bundles: wrk completed ${requests.toLocaleString('en-US')} responses (${failures} errors or non-2xx); PostgreSQL recorded ` +
        `${issued.toLocaleString('en-US')} new deliveries with as many "issued" events (${events.toLocaleString('en-US')}), ` +
        `${sent.toLocaleString('en-US')} of them "sent" ` +
        `(deliveries beyond the completed responses were cut off when wrk stopped).`,
    );
  }

  // --- confirmations over TCP, 100 clients ---
  let tcpConfirmations: Summary | null = null;
  if (SECTIONS.has('confirm')) {
    console.log('bench: confirmations over TCP with 100 clients, against pgbench single-row UPDATEs');
    const wanted = CONFIRMATIONS_PER_RUN * (RUNS + 1);
    const { rows: issued } = await db.query<{ plugin_data: Buffer; client_fingerprint: string }>(
      `SELECT plugin_data, client_fingerprint FROM deliveries WHERE content_id = $1 AND client_fingerprint = ANY($2) AND ` +
        `status = 'sent' LIMIT $3`,
      [small.id, [...identityOf.keys()], wanted],
    );
    // The plug-in data of each delivery, opened with the client key it was sealed to, gives its confirmation secret.
    const frames = issued.map(({ plugin_data, client_fingerprint }) => {
      const identity = identityOf.get(client_fingerprint)!;
      const { data } = openPluginData(plugin_data, { identity });
      return encodeConfirmation(
        { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [small.sha256] },
        data.confirmSecret,
      );
    });
    const perRun = Math.floor(frames.length / (RUNS + 1));
    if (perRun < 100) throw new Error(`only ${frames.length} deliveries to confirm`);
    const rates: number[] = [];
    const p99s: number[] = [];
    const statuses: Record<string, number> = {};
    for (let i = 0; i <= RUNS; i++) {
      const result = await confirmLoad(server.confirmPort, frames.slice(i * perRun, (i + 1) * perRun), 100, 120_000);
      for (const [name, count] of Object.entries(result.statuses)) statuses[name] = (statuses[name] ?? 0) + count;
      if (i === 0) continue; // warm-up
      rates.push(result.perSecond);
      p99s.push(result.p99Ms);
    }
    const rate = summarize(rates);
    tcpConfirmations = rate;
    const p99 = summarize(p99s);
    const accepted = statuses.accepted ?? 0;
    rows.push({
      name: 'confirmations over TCP, 100 concurrent clients, PostgreSQL',
      dcx: `${perSecond(rate, 'confirmations')}, ${ms(p99)}`,
      baseline: pgbenchText,
      ratio: `${ratio(rate, pgbench!.tps)}; worst run p99 ${p99.max.toFixed(1)} ms`,
      target: '>= 0.6x pgbench, p99 < 50 ms',
      met: rate.median / pgbench!.tps.median >= 0.6 && p99.median < 50 && accepted === perRun * (RUNS + 1),
    });
    notes.push(
      `Confirmations: ${perRun.toLocaleString('en-US')} per run over 100 persistent connections (one frame in flight each); ` +
        `answers: ${JSON.stringify(statuses)}.`,
    );
  }

  // --- issue 16: 10,000 inbox event streams (inbox); pull-next-with-deletion cycles against the TCP confirmations above (inbox-next) ---
  if (SECTIONS.has('inbox') || SECTIONS.has('inbox-next')) {
    await benchInboxEvents(
      { startDcx, db, workDir, runs: RUNS, content: small, tcpConfirmations, rows, notes },
      { streams: SECTIONS.has('inbox'), cycles: SECTIONS.has('inbox-next') },
    );
  }

  // --- 200 concurrent dcx fetches of 10 MiB ---
  if (SECTIONS.has('concurrent')) {
    console.log(`bench: ${CONCURRENT_FETCHES} concurrent dcx fetch of 10 MiB`);
    const homes = await Promise.all(Array.from({ length: CONCURRENT_FETCHES }, () => newClientHome()));
    cleanup.add('client homes', async () => void (await Promise.all(homes.map((home) => rm(home, { recursive: true, force: true })))));
    const out = await mkdtemp(join(workDir, 'concurrent-'));
    const confirmed = async () =>
      Number(
        (await db.query<{ n: string }>(`SELECT count(*) AS n FROM deliveries WHERE content_id = $1 AND status = 'confirmed'`, [medium.id]))
          .rows[0].n,
      );
    const before = await confirmed();
    sampler.start();
    const started = process.hrtime.bigint();
    const results = await Promise.all(
      homes.map((home, i) =>
        dcxCli(['fetch', medium.bundleUrl, '--out', join(out, String(i)), '--json'], { DCX_HOME: home }, 300_000).catch((error: Error) => ({
          code: -1,
          stdout: '',
          stderr: error.message,
          ms: 0,
        })),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peak = Math.max(sampler.stop(), 0);
    const ok = results.filter((r) => r.code === 0 && (JSON.parse(r.stdout) as { status: string }).status === 'accepted').length;
    const newlyConfirmed = (await confirmed()) - before;
    const firstError = results.find((r) => r.code !== 0);
    rows.push({
      name: `${CONCURRENT_FETCHES} concurrent \`dcx fetch\` of 10 MiB (separate CLI processes)`,
      dcx:
        `${ok}/${CONCURRENT_FETCHES} confirmed, ${newlyConfirmed} confirmed in PostgreSQL, ${seconds.toFixed(1)} s, ` +
        `server peak RSS ${mb(peak)}`,
      baseline: '–',
      ratio: '–',
      target: 'all complete and confirmed, no error, RSS <= 300 MB',
      met: ok === CONCURRENT_FETCHES && newlyConfirmed === CONCURRENT_FETCHES && peak <= 300 * MB,
    });
    if (firstError) notes.push(`Concurrent fetches: first failure: exit ${firstError.code}: ${firstError.stderr.trim().slice(0, 300)}`);
    await rm(out, { recursive: true, force: true });
  }

  if (SECTIONS.has('https-confirm')) {
    await benchHttpsConfirmations({ server, db, runs: RUNS, workDir, content: small, rows, notes });
  }

  // --- ZIP64: a bundle over 4 GiB, through the real HTTP API, checked by unzip -t and dcx fetch ---
  if (SECTIONS.has('distributions')) {
    await benchDistributions({ server, db, workDir, runs: RUNS, content: small, rows, notes, dcxCli });
  }

  if (SECTIONS.has('zip64')) {
    console.log('bench: ZIP64 bundle of a 4.5 GiB sparse content: publish, curl, unzip -t, dcx fetch');
    const path = join(workDir, 'huge.bin');
    await sparseFile(path, ZIP64_SIZE);
    let t = process.hrtime.bigint();
    const lap = () => {
      const now = process.hrtime.bigint();
      const seconds = Number(now - t) / 1e9;
      t = now;
      return `${seconds.toFixed(1)} s`;
    };
    const huge = await publish(server, path);
    await rm(path);
    const publishTime = lap();
    const bundle = join(workDir, 'huge.dcx');
    const downloaded = await curl(huge.bundleUrl, bundle);
    const curlTime = lap();
    const test = await run('unzip', ['-t', bundle], { timeoutMs: 300_000 });
    const unzipTime = lap();
    await rm(bundle);
    const unzipOk = test.code === 0 && /No errors detected/.test(test.stdout);
    const out = await mkdtemp(join(workDir, 'huge-out-'));
    const home = await newClientHome();
    cleanup.add('client home', () => rm(home, { recursive: true, force: true }));
    const fetched = await dcxCli(['fetch', huge.bundleUrl, '--out', out, '--json'], { DCX_HOME: home }, 300_000);
    const fetchTime = lap();
    const report =
      fetched.code === 0 ? (JSON.parse(fetched.stdout) as { status: string; files: { sha256: string; size: number }[] }) : null;
    const fetchOk = report?.status === 'accepted' && report.files[0].sha256 === huge.sha256 && report.files[0].size === ZIP64_SIZE;
    await rm(out, { recursive: true, force: true });
    const fetchVerdict = fetchOk ? 'saved, SHA-256 equal, confirmed' : `FAILED (${fetched.code}: ${fetched.stderr.trim().slice(0, 200)})`;
    rows.push({
      name: 'ZIP64: 4.5 GiB content through the HTTP API',
      dcx:
        `bundle ${(downloaded.bytes / GiB).toFixed(2)} GiB; \`unzip -t\`: ${unzipOk ? 'No errors detected' : `FAILED (${test.code})`}; ` +
        `\`dcx fetch\`: ${fetchVerdict}`,
      baseline: '–',
      ratio: '–',
      target: 'unzip -t and dcx fetch succeed',
      met: unzipOk && fetchOk,
    });
    notes.push(`ZIP64 timings: publish ${publishTime}, curl ${curlTime}, unzip -t ${unzipTime}, dcx fetch ${fetchTime}.`);
  }

  const finished = new Date();
  const machine = [
    `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / GiB).toFixed(1)} GiB memory`,
    `Node ${process.version}, ${nginx.version}, ` +
      `${(await db.query<{ version: string }>('SELECT version()')).rows[0].version.split(' on ')[0]}`,
    `${started.toISOString()} → ${finished.toISOString()} (${((finished.getTime() - started.getTime()) / 60_000).toFixed(1)} ` +
      `min), ${RUNS} measured runs per figure after a warm-up`,
    `1-minute load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end (other work on the ` +
      `same 2 cores counts in it)`,
  ];
  const report = formatReport(rows, machine, notes);
  console.log(`\n${report}`);
  const resultsDir = join(ROOT, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, 'latest.md'), report);
  console.log(`bench: written to ${join(resultsDir, 'latest.md')}`);
}

/** The baseline for confirmations: how many single-row UPDATE transactions PostgreSQL commits here. */
async function pgbenchUpdates(url: string, workDir: string, clients: number): Promise<{ tps: Summary; p99: Summary }> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('CREATE TABLE bench_rows (id int PRIMARY KEY, v bigint NOT NULL DEFAULT 0)');
  await setup.query('INSERT INTO bench_rows (id) SELECT generate_series(1, 100000)');
  await setup.end();
  const script = join(workDir, 'update.sql');
  await writeFile(script, '\\set id random(1, 100000)\nUPDATE bench_rows SET v = v + 1 WHERE id = :id;\n');
  const tps: number[] = [];
  const p99: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const logDir = await mkdtemp(join(workDir, 'pgbench-'));
    const result = await runOk(
      'pgbench',
      ['-n', '-c', String(clients), '-j', '2', '-T', '3', '-f', script, '--log', `--log-prefix=${join(logDir, 'log')}`, url],
      { timeoutMs: 60_000 },
    );
    const match = /tps = ([\d.]+)/.exec(result.stdout);
    if (!match) throw new Error(`cannot read pgbench's output: ${result.stdout}`);
    tps.push(Number(match[1]));
    const latencies: number[] = [];
    const logs = await run('sh', ['-c', `cat ${logDir}/log*`], { timeoutMs: 30_000 });
    for (const line of logs.stdout.split('\n')) {
      const fields = line.split(' ');
      if (fields.length >= 3) latencies.push(Number(fields[2]) / 1000);
    }
    p99.push(percentile(latencies, 99));
    await rm(logDir, { recursive: true, force: true });
  }
  return { tps: summarize(tps), p99: summarize(p99) };
}

async function main(): Promise<void> {
  let stopping = false;
  const abort = async (why: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`bench: ${why}; stopping everything it started`);
    killRunning();
    await cleanup.runAll();
    process.exit(1);
  };
  process.once('SIGINT', () => void abort('interrupted'));
  process.once('SIGTERM', () => void abort('terminated'));
  const deadline = setTimeout(() => void abort(`not finished within ${OVERALL_DEADLINE_MS / 60_000} min`), OVERALL_DEADLINE_MS);
  try {
    await bench();
  } catch (error) {
    console.error(`bench: failed: ${(error as Error).stack ?? String(error)}`);
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    if (!stopping) await cleanup.runAll();
  }
}

await main();
