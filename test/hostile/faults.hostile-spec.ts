import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { AddressInfo, connect, createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Answer, AnswerStatus, answerStatusName, decodeAnswer } from '../../src/protocol/answer.js';
import { encodeConfirmation } from '../../src/protocol/confirmation.js';
import { FrameParser } from '../../src/protocol/frame.js';
import { openPluginData } from '../../src/protocol/plugin-data.js';
import { newClientHome, publish } from '../support/cli-process.js';
import { until } from '../support/eventually.js';
import { ROOT } from '../support/server-process.js';
import { alive, fetchBundle, Figures, inParallel, pluginRecordOf, scale, sql } from './support/hostile.js';
import { RestartableServer, startRestartable } from '../support/restartable-server.js';

const MiB = 1024 * 1024;

/** A TCP relay to the HTTP port that, when armed, stops passing a bundle response after `holdAfter` bytes. */
class HoldingProxy {
  private armed: { after: number; reached: () => void } | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly tcp: Server,
    private readonly target: () => number,
  ) {}

  static async start(target: () => number): Promise<HoldingProxy> {
    const tcp = createServer();
    const proxy = new HoldingProxy(tcp, target);
    tcp.on('connection', (client) => proxy.relay(client));
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.tcp.address() as AddressInfo).port}`;
  }

  /** The next bundle response stalls after `after` bytes: resolves then, the transfer still open. */
  hold(after: number): Promise<void> {
    return new Promise((reached) => (this.armed = { after, reached }));
  }

  /** Breaks every relayed connection. */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.cutAll();
    this.tcp.close();
    await once(this.tcp, 'close');
  }

  private relay(client: Socket): void {
    const upstream = connect(this.target(), '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    let hold: { after: number; reached: () => void; passed: number } | null = null;
    client.on('data', (chunk: Buffer) => {
      if (this.armed && /^GET \/api\/(contents|deliveries)\/[^ ]+\/bundle/.test(chunk.toString('latin1', 0, 200))) {
        hold = { ...this.armed, passed: 0 };
        this.armed = null;
      }
      upstream.write(chunk);
    });
    // Ends pass through (so that what was written still arrives); a break breaks the other side too.
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    upstream.on('data', (chunk: Buffer) => {
      if (!hold) return void client.write(chunk);
      const room = hold.after - hold.passed;
      if (chunk.length < room) {
        hold.passed += chunk.length;
        return void client.write(chunk);
      }
      client.write(chunk.subarray(0, room));
      upstream.pause();
      upstream.removeAllListeners('data');
      hold.reached();
      hold = null;
    });
  }
}

interface Exited {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `dcx` as a process that the test may kill. */
function spawnDcx(args: string[], home: string): { child: ChildProcess; done: Promise<Exited> } {
  const child = spawn(process.execPath, [join(ROOT, 'dist/src/client/main.js'), ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DCX_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<Exited>((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

async function randomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let written = 0; written < size;) {
    const chunk = randomBytes(Math.min(4 * MiB, size - written));
    hash.update(chunk);
    written += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return hash.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** One frame on its own connection; its answer, or null when the connection broke first. */
function confirmOnce(port: number, frame: Buffer): Promise<Answer | null> {
  return new Promise((resolve) => {
    const parser = new FrameParser();
    let answer: Answer | null = null;
    const socket = connect(port, '127.0.0.1', () => socket.write(frame));
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('data', (chunk) =>
      parser.parse(chunk, (f) => {
        answer = decodeAnswer(f);
        socket.end();
      }),
    );
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(answer));
  });
}

/** Anonymous deliveries of a content, each with its valid confirmation frame and a forged one (wrong digest). */
async function deliveries(url: string, contentId: string, sha256: string, count: number) {
  return inParallel(Array.from({ length: count }), 8, async () => {
    const { bytes, deliveryId } = await fetchBundle(url, contentId);
    const { data } = openPluginData(pluginRecordOf(bytes), {});
    const frame = (digest: string) =>
      encodeConfirmation({ deliveryId, clientFingerprint: '00'.repeat(32), digests: [digest] }, data.confirmSecret);
    return { deliveryId, valid: frame(sha256), forged: frame(randomBytes(32).toString('hex')) };
  });
}

/**
 * Crashes and faults, against real processes: the server killed mid-download and restarted, `dcx fetch`
 * killed mid-download and between saving and confirming, PostgreSQL connections terminated under a
 * stream of confirmations, and the embedded PGlite killed during writes.
 */
describe('hostile: faults', () => {
  const figures = new Figures('faults');
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dcx-hostile-faults-'));
  });

  afterAll(async () => {
    figures.write();
    await rm(work, { recursive: true, force: true });
  });

  describe('postgres', () => {
    let server: RestartableServer;
    let proxy: HoldingProxy;
    const confirmSlots = 2;

    beforeAll(async () => {
      server = await startRestartable('postgres', {
        LOG_LEVEL: 'warn',
        CONFIRM_MAX_CONNECTIONS: String(confirmSlots),
        CONFIRM_IDLE_TIMEOUT_MS: '60000',
      });
      proxy = await HoldingProxy.start(() => Number(new URL(server.url).port));
    });

    afterAll(async () => {
      await proxy?.stop();
      await server?.stop();
    });

    async function confirmedOnce(contentId: string): Promise<{ deliveries: number; confirmedEvents: number; status: string[] }> {
      const rows = await sql<{ id: string; status: string }>(
        server.databaseUrl!,
        `SELECT id, status FROM deliveries WHERE content_id = $1`,
        [contentId],
      );
      const events = await sql<{ n: string }>(
        server.databaseUrl!,
        `SELECT count(*) AS n FROM delivery_events e JOIN deliveries d ON d.id = e.delivery_id WHERE d.content_id = $1 AND e.type = 'confirmed'`,
        [contentId],
      );
      return { deliveries: rows.length, confirmedEvents: Number(events[0].n), status: rows.map((r) => r.status) };
    }

    test(`kill -9 of the server in the middle of a ${scale(64, 500)} MiB download; restarted, dcx fetch resumes: confirmed once, no partial file in --out`, async () => {
      const size = scale(64, 500) * MiB;
      const file = join(work, 'big.bin');
      const sha256 = await randomFile(file, size);
      const { id } = await publish(server, file, 'public');
      await rm(file);
      const home = await newClientHome();
      const out = await mkdtemp(join(work, 'out-'));
      const url = `${proxy.url}/api/contents/${id}/bundle`;

      const held = proxy.hold(Math.floor(size / 2));
      const first = spawnDcx(['fetch', url, '--out', out, '--json'], home);
      await held;
      await server.kill9();
      proxy.cutAll();
      const interrupted = await first.done;
      expect([interrupted.code, interrupted.stderr]).toEqual([6, expect.stringMatching(/^dcx: [^\n]*interrupted[^\n]*\n$/)]);
      expect(await readdir(out)).toEqual([]);

      await server.restart();
      const second = await spawnDcx(['fetch', url, '--out', out, '--json'], home).done;
      expect([second.code, second.stderr]).toEqual([0, expect.not.stringMatching(/restart|again from the start/i)]);
      expect(JSON.parse(second.stdout)).toMatchObject({ status: 'accepted' });
      expect(await readdir(out)).toEqual(['big.bin']);
      expect(await sha256File(join(out, 'big.bin'))).toBe(sha256);
      expect(await readdir(join(home, 'downloads'))).toEqual([]);
      expect(await confirmedOnce(id)).toEqual({ deliveries: 1, confirmedEvents: 1, status: ['confirmed'] });
      figures.set('serverKilledMidDownloadMiB', size / MiB);
      figures.add('faultsInjected');
    });

    test('kill -9 of dcx fetch mid-download: the re-run completes; confirmed once', async () => {
      const content = randomBytes(16 * MiB);
      const file = join(work, 'mid.bin');
      await writeFile(file, content);
      const { id } = await publish(server, file, 'public');
      const home = await newClientHome();
      const out = await mkdtemp(join(work, 'out-'));
      const url = `${proxy.url}/api/contents/${id}/bundle`;

      const held = proxy.hold(5 * MiB);
      const first = spawnDcx(['fetch', url, '--out', out], home);
      await held;
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
      proxy.cutAll();
      expect(await readdir(out)).toEqual([]);

      const second = await spawnDcx(['fetch', url, '--out', out, '--json'], home).done;
      expect([second.code, second.stderr]).toEqual([0, expect.stringMatching(/^(pinned server [^\n]*\n)?$/)]);
      expect(await readdir(out)).toEqual(['mid.bin']);
      expect((await readFile(join(out, 'mid.bin'))).equals(content)).toBe(true);
      expect(await confirmedOnce(id)).toEqual({ deliveries: 1, confirmedEvents: 1, status: ['confirmed'] });
      figures.add('faultsInjected');
    });

    test('kill -9 of dcx fetch between saving the content and its confirmation: the re-run confirms it; confirmed once', async () => {
      const content = randomBytes(MiB);
      const file = join(work, 'saved.bin');
      await writeFile(file, content);
      const { id } = await publish(server, file, 'public');
      const home = await newClientHome();
      const out = await mkdtemp(join(work, 'out-'));
      const url = `${server.url}/api/contents/${id}/bundle`;

      // Every confirmation slot taken: dcx gets "try later" and waits between its tries, the content saved.
      const held: Socket[] = [];
      for (let i = 0; i < confirmSlots; i++) {
        const socket = connect(server.confirmPort, '127.0.0.1');
        socket.on('error', () => undefined);
        held.push(socket);
        const answer = await new Promise<Answer>((resolve) => {
          const parser = new FrameParser();
          socket.on('data', (chunk) => parser.parse(chunk, (f) => resolve(decodeAnswer(f))));
          socket.write(
            encodeConfirmation(
              { deliveryId: '00000000-0000-0000-0000-000000000001', clientFingerprint: '00'.repeat(32), digests: [] },
              randomBytes(32),
            ),
          );
        });
        expect(answerStatusName(answer.status)).toBe('unknown');
      }
      let first: ReturnType<typeof spawnDcx> | undefined;
      try {
        first = spawnDcx(['fetch', url, '--out', out], home);
        await until('the content saved in --out before its confirmation', async () => (await readdir(out)).includes('saved.bin'));
        expect(first.child.exitCode).toBeNull();
        first.child.kill('SIGKILL');
        expect((await first.done).signal).toBe('SIGKILL');
      } finally {
        for (const socket of held) socket.destroy();
      }
      expect((await confirmedOnce(id)).status).toEqual([expect.stringMatching(/^(issued|sent)$/)]);

      const second = await spawnDcx(['fetch', url, '--out', out, '--json'], home).done;
      expect([second.code, second.stderr]).toEqual([0, expect.stringMatching(/^(pinned server [^\n]*\n)?$/)]);
      // The first run's save is recognised by the re-run (same name, size and SHA-256): confirmed, not saved twice.
      const saved = (await readdir(out)).sort();
      expect(saved).toEqual(['saved.bin']);
      for (const name of saved) expect((await readFile(join(out, name))).equals(content)).toBe(true);
      expect(await confirmedOnce(id)).toEqual({ deliveries: 1, confirmedEvents: 1, status: ['confirmed'] });
      figures.add('faultsInjected');
    });

    test('pg_terminate_backend of the server\'s connections during a stream of confirmations: "try later", nothing wrongly confirmed, recovers by itself', async () => {
      const file = join(work, 'stream.bin');
      const content = randomBytes(10_000);
      await writeFile(file, content);
      const { id } = await publish(server, file, 'public');
      const sha256 = createHash('sha256').update(content).digest('hex');
      const issued = await deliveries(server.url, id, sha256, scale(150, 1000));
      const database = new URL(server.databaseUrl!).pathname.slice(1);

      const answers: Record<string, number> = {};
      let terminated = 0;
      let streaming = true;
      const terminator = (async () => {
        const rounds = scale(10, 60);
        for (let round = 0; round < rounds && streaming; round++) {
          const killed = await sql<{ t: boolean }>(
            server.databaseUrl!.replace(`/${database}`, '/postgres'),
            `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
            [database],
          );
          terminated += killed.filter((k) => k.t).length;
          await new Promise((r) => setTimeout(r, 30));
        }
      })();
      // Each delivery: its forged confirmation first (refused, or "try later"), then the valid one until it counts.
      const outcome = await inParallel(issued, 6, async (d) => {
        const forged = await confirmOnce(server.confirmPort, d.forged);
        const forgedStatus = forged ? answerStatusName(forged.status) : 'no answer';
        answers[`forged ${forgedStatus}`] = (answers[`forged ${forgedStatus}`] ?? 0) + 1;
        for (;;) {
          const answer = await confirmOnce(server.confirmPort, d.valid);
          const status = answer ? answerStatusName(answer.status) : 'no answer';
          answers[status] = (answers[status] ?? 0) + 1;
          if (answer && (answer.status === AnswerStatus.Accepted || answer.status === AnswerStatus.AlreadyConfirmed))
            return { ...d, receipt: answer.receipt };
          expect(['try_later', 'no answer']).toContain(status);
          if (!alive(server.pid())) throw new Error(`the server died during the confirmation stream:\n${server.output().slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      });
      streaming = false;
      await terminator;
      figures.set('pgTerminatedBackends', terminated);
      figures.set('confirmationStreamAnswers', answers);
      expect(
        Object.keys(answers).filter(
          (k) => k.startsWith('forged') && !['forged digest_mismatch', 'forged try_later', 'forged no answer'].includes(k),
        ),
      ).toEqual([]);

      const rows = await sql<{ id: string; status: string; receipt: Buffer }>(
        server.databaseUrl!,
        `SELECT id, status, receipt FROM deliveries WHERE content_id = $1`,
        [id],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(outcome.filter((d) => byId.get(d.deliveryId)?.status !== 'confirmed')).toEqual([]);
      expect(outcome.filter((d) => !Buffer.from(d.receipt!).equals(byId.get(d.deliveryId)!.receipt))).toEqual([]);
      const events = await sql<{ delivery_id: string; n: string }>(
        server.databaseUrl!,
        `SELECT delivery_id, count(*) AS n FROM delivery_events WHERE type = 'confirmed' AND delivery_id = ANY($1) GROUP BY delivery_id`,
        [issued.map((d) => d.deliveryId)],
      );
      expect(events.length).toBe(issued.length);
      expect(events.filter((e) => Number(e.n) !== 1)).toEqual([]);
      // And by itself, with no restart: a new delivery is confirmed at the first try.
      const [fresh] = await deliveries(server.url, id, sha256, 1);
      expect(answerStatusName((await confirmOnce(server.confirmPort, fresh.valid))!.status)).toBe('accepted');
      figures.set('confirmationStreamDeliveries', issued.length);
      figures.add('faultsInjected');
    });
  });

  test('embedded PGlite killed -9 during writes: it reopens with every confirmed delivery intact', async () => {
    const server = await startRestartable('pglite', { LOG_LEVEL: 'warn' });
    try {
      const file = join(work, 'pglite.bin');
      const content = randomBytes(5000);
      await writeFile(file, content);
      const { id } = await publish(server, file, 'public');
      const sha256 = createHash('sha256').update(content).digest('hex');
      const rounds = scale(1, 4);
      let confirmedBeforeKill = 0;
      for (let round = 0; round < rounds; round++) {
        const issued = await deliveries(server.url, id, sha256, scale(40, 200));
        const accepted: string[] = [];
        const kill: { done?: Promise<void> } = {};
        await inParallel(issued, 6, async (d) => {
          const answer = await confirmOnce(server.confirmPort, d.valid);
          if (answer?.status === AnswerStatus.Accepted) accepted.push(d.deliveryId);
          // Killed while confirmations are still being written.
          if (accepted.length >= issued.length / 3) kill.done ??= server.kill9();
        });
        await kill.done;
        confirmedBeforeKill += accepted.length;
        await server.restart();
        const lost: string[] = [];
        for (const deliveryId of accepted) {
          const view = (await (await server.admin(`/api/deliveries/${deliveryId}`)).json()) as { status: string; receipt?: unknown };
          if (view.status !== 'confirmed') lost.push(`${deliveryId}: ${view.status}`);
        }
        expect(lost).toEqual([]);
        // The rest can still be confirmed after the restart.
        for (const d of issued.filter((i) => !accepted.includes(i.deliveryId)).slice(0, 5)) {
          const answer = await confirmOnce(server.confirmPort, d.valid);
          expect(['accepted', 'already_confirmed']).toContain(answer ? answerStatusName(answer.status) : 'no answer');
        }
        figures.add('pgliteKills');
        figures.add('faultsInjected');
      }
      figures.set('pgliteConfirmedBeforeKills', confirmedBeforeKill);
      figures.set('pgliteConfirmedLost', 0);
    } finally {
      await server.stop();
    }
  });
});
