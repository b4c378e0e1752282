import { randomBytes } from 'node:crypto';
import { connect, Socket } from 'node:net';
import { Answer, AnswerStatus, answerStatusName, decodeAnswer } from '../../src/protocol/answer.js';
import { encodeConfirmation } from '../../src/protocol/confirmation.js';
import { FrameParser } from '../../src/protocol/frame.js';
import { openPluginData } from '../../src/protocol/plugin-data.js';
import { eventually, until } from '../support/eventually.js';
import { RunningServer, startServer } from '../support/server-process.js';
import { alive, fetchBundle, Figures, inParallel, pluginRecordOf, prng, rssBytes, scale, SEED, sql, upload } from './support/hostile.js';

const MAX_CONNECTIONS = 64;
// Long enough that a held connection, kept busy every quarter of it, is not cut while both sides are loaded.
const IDLE_TIMEOUT_MS = 20_000;
const MAX_FRAME = 65536;

interface Outcome {
  answers: Answer[];
  /** The server closed the connection (or reset it) rather than the test. */
  closed: boolean;
  /** Bytes that came back and are no answer frame. */
  garbage: boolean;
}

/** Writes `chunks` (each its own write) to the port, half-closes, and reads every answer until the server closes. */
function exchangeRaw(port: number, chunks: Buffer[], keepOpenMs = 0): Promise<Outcome> {
  return new Promise((resolve) => {
    const answers: Answer[] = [];
    const parser = new FrameParser(MAX_FRAME);
    let garbage = false;
    const socket = connect(port, '127.0.0.1', () => {
      for (const chunk of chunks) socket.write(chunk);
      if (keepOpenMs === 0) socket.end();
      else setTimeout(() => socket.end(), keepOpenMs);
    });
    socket.setTimeout(30_000, () => socket.destroy());
    socket.on('data', (chunk) => {
      try {
        parser.parse(chunk, (frame) => answers.push(decodeAnswer(frame)));
      } catch {
        garbage = true;
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ answers, closed: true, garbage: garbage || parser.pending !== 0 }));
  });
}

/** The confirmation frame of a delivery, sealed with its real secret (what `dcx` would send). */
function realFrame(secret: Buffer, deliveryId: string, digest: string): Buffer {
  return encodeConfirmation({ deliveryId, clientFingerprint: '00'.repeat(32), digests: [digest] }, secret);
}

/**
 * [89] under fuzz: frames made from valid confirmation frames of real deliveries, bit-flipped,
 * truncated, with hostile length fields, pipelined, trickled, never read, and more connections than
 * allowed. Afterwards the port answers a real confirmation at once, the server's RSS is back, it never died,
 * and none of the fuzzed deliveries was confirmed.
 */
describe('hostile: TCP confirmation port fuzzing (postgres)', () => {
  let server: RunningServer;
  const figures = new Figures('tcp');
  const content = randomBytes(4096);
  let contentId: string;
  let sha256: string;
  const victims: { deliveryId: string; frame: Buffer }[] = [];

  beforeAll(async () => {
    server = await startServer('postgres', {
      CONFIRM_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      CONFIRM_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      CONFIRM_MAX_FRAME_BYTES: String(MAX_FRAME),
      LOG_LEVEL: 'warn',
    });
    ({ id: contentId, sha256 } = await upload(server, 'fuzz.bin', content));
    // Anonymous deliveries fetched from 127.0.0.1: a fuzzed frame that still opened would confirm one.
    for (let i = 0; i < 8; i++) {
      const { bytes, deliveryId } = await fetchBundle(server.url, contentId);
      const { data } = openPluginData(pluginRecordOf(bytes), {});
      victims.push({ deliveryId, frame: realFrame(data.confirmSecret, deliveryId, sha256) });
    }
  });

  afterAll(async () => {
    figures.set('seed', SEED);
    figures.write();
    await server?.stop();
  });

  /** One mutation of a valid frame: never the frame itself. */
  function mutate(random: ReturnType<typeof prng>, frame: Buffer): { kind: string; bytes: Buffer } {
    const bytes = Buffer.from(frame);
    switch (random.int(6)) {
      case 0:
      case 1: {
        const flips = 1 + random.int(4);
        for (let i = 0; i < flips; i++) bytes[random.int(bytes.length)] ^= 1 << random.int(8);
        if (bytes.equals(frame)) bytes[6] ^= 1;
        return { kind: 'bit flips', bytes };
      }
      case 2:
        return { kind: 'truncation', bytes: bytes.subarray(0, random.int(bytes.length)) };
      case 3: {
        const length = random.pick([0, 1, 5, 6, 7, 33, 34, 49, MAX_FRAME, MAX_FRAME + 1, 0x7fffffff, 0xffffffff]);
        bytes.writeUInt32BE(length, 0);
        return { kind: 'length field', bytes };
      }
      case 4: {
        // A frame whose length claims more or less than it carries, within the limit.
        bytes.writeUInt32BE(Math.max(6, bytes.length + (random.int(2) ? 1 : -1) * (1 + random.int(32))), 0);
        return { kind: 'length off by some', bytes };
      }
      default: {
        bytes[4 + random.int(2)] = random.int(256);
        if (bytes.equals(frame)) bytes[5] ^= 0x80;
        return { kind: 'version or type', bytes };
      }
    }
  }

  function count(outcome: Outcome): void {
    for (const answer of outcome.answers) figures.tally('answersByStatus', answerStatusName(answer.status));
    if (outcome.answers.length === 0) figures.add('connectionsClosedWithoutAnswer');
    if (outcome.garbage) figures.add('garbageAnswers');
  }

  test('fuzzed frames, pipelined several to a segment, split at random points: every answer is a well-formed frame, nothing confirmed', async () => {
    const random = prng(SEED);
    const total = scale(6000, 100_000);
    const perConnection = 20;
    const connections = Math.ceil(total / perConnection);
    let sent = 0;
    const fuzzOnce = async () => {
      const frames: Buffer[] = [];
      for (let i = 0; i < perConnection; i++) {
        const victim = random.pick(victims);
        const { kind, bytes } = mutate(random, victim.frame);
        figures.tally('framesByKind', kind);
        frames.push(bytes);
        // Some valid-looking unknown frames in between, so that a connection goes on after a recoverable refusal.
        if (random.int(4) === 0) frames.push(realFrame(randomBytes(32), victim.deliveryId, '11'.repeat(32)));
      }
      sent += frames.length;
      const stream = Buffer.concat(frames);
      // Split the pipelined stream into segments at random points.
      const cuts = [0, ...Array.from({ length: random.int(4) }, () => random.int(stream.length)), stream.length].sort((a, b) => a - b);
      return exchangeRaw(
        server.confirmPort,
        cuts.slice(1).map((end, i) => stream.subarray(cuts[i], end)),
      );
    };
    // A warm-up, then the resident set the rest is compared with.
    for (const outcome of await inParallel(Array.from({ length: 20 }), 10, fuzzOnce)) count(outcome);
    figures.set('rssStartBytes', rssBytes(server.pid));
    const outcomes = await inParallel(Array.from({ length: connections }), 16, fuzzOnce);
    for (const outcome of outcomes) count(outcome);
    figures.set('fuzzedFramesSent', sent);
    expect(figures.get('garbageAnswers')).toBeUndefined();
    expect(alive(server.pid)).toBe(true);
  });

  test('peers that send megabytes of frames and never read are paused, not buffered without bound; others are still answered', async () => {
    const peers = scale(4, 16);
    const frame = realFrame(randomBytes(32), victims[0].deliveryId, '11'.repeat(32));
    const burst = Buffer.concat(Array.from({ length: scale(20_000, 200_000) }, () => frame)); // 2.3 MB, long form 23 MB
    const sockets: Socket[] = [];
    for (let i = 0; i < peers; i++) {
      const socket = connect(server.confirmPort, '127.0.0.1');
      socket.pause(); // never reads
      socket.on('error', () => undefined);
      socket.write(burst);
      sockets.push(socket);
    }
    // What the server (and the kernel's buffers) took of each burst, until it stops taking more.
    const taken = () => sockets.map((s) => burst.length - s.writableLength);
    let last: number[] = [];
    const settled = await eventually(
      async () => {
        const before = last;
        last = taken();
        return before.length > 0 && last.every((n, i) => n === before[i]);
      },
      Boolean,
      120_000,
      1000,
    );
    figures.set('neverReadingPeers', peers);
    figures.set('neverReadingBytesOffered', peers * burst.length);
    figures.set(
      'neverReadingBytesTaken',
      last.reduce((a, b) => a + b, 0),
    );
    expect(settled).toBe(true);
    if (burst.length > 16 * 1024 * 1024) expect(Math.max(...last)).toBeLessThan(burst.length);
    // Meanwhile the port answers others at once.
    const other = await exchangeRaw(server.confirmPort, [realFrame(randomBytes(32), victims[0].deliveryId, '11'.repeat(32))]);
    expect(other.answers.map((a) => answerStatusName(a.status))).toEqual(['seal_invalid']);
    for (const socket of sockets) socket.destroy();
    expect(alive(server.pid)).toBe(true);
  });

  test('byte-by-byte senders (one write per byte) are each answered', async () => {
    const senders = scale(20, 200);
    const frames = Array.from({ length: senders }, () => realFrame(randomBytes(32), victims[0].deliveryId, '22'.repeat(32)));
    const answers = await inParallel(frames, 20, (frame) =>
      exchangeRaw(
        server.confirmPort,
        [...frame].map((byte) => Buffer.from([byte])),
      ),
    );
    figures.set('byteByByteSenders', senders);
    for (const outcome of answers) count(outcome);
    expect(answers.map((o) => o.answers.map((a) => a.status))).toEqual(frames.map(() => [AnswerStatus.SealInvalid]));
  });

  test(`connections beyond CONFIRM_MAX_CONNECTIONS (${MAX_CONNECTIONS}) are told "try later"; the held ones still work`, async () => {
    const beyond = scale(300, 2000);
    // Hold every allowed connection, each proven registered by an answer, kept busy below the idle timeout.
    const held: Socket[] = [];
    const heldAnswers: number[] = [];
    const frame = realFrame(randomBytes(32), victims[1].deliveryId, '33'.repeat(32));
    await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, (_, i) => {
        heldAnswers[i] = 0;
        return new Promise<void>((resolve, reject) => {
          const parser = new FrameParser();
          const socket = connect(server.confirmPort, '127.0.0.1', () => socket.write(frame));
          socket.on('data', (chunk) =>
            parser.parse(chunk, (f) => {
              if (decodeAnswer(f).status === AnswerStatus.SealInvalid) heldAnswers[i]++;
              resolve();
            }),
          );
          socket.on('error', reject);
          held.push(socket);
        });
      }),
    );
    const keepBusy = setInterval(() => held.forEach((s) => s.write(frame)), IDLE_TIMEOUT_MS / 4);
    try {
      const refused = await inParallel(Array.from({ length: beyond }), 100, () => exchangeRaw(server.confirmPort, [frame], 1));
      const statuses = refused.map((o) => o.answers.map((a) => answerStatusName(a.status)).join(',') || 'none');
      figures.set('connectionsBeyondLimit', beyond);
      figures.set('connectionsRefusedTryLater', statuses.filter((s) => s === 'try_later').length);
      expect(statuses.filter((s) => s !== 'try_later')).toEqual([]);
      // The held connections were answered all along.
      const before = heldAnswers.reduce((a, b) => a + b, 0);
      await until(
        'the held connections to be answered again',
        async () => heldAnswers.reduce((a, b) => a + b, 0) >= before + MAX_CONNECTIONS,
      );
    } finally {
      clearInterval(keepBusy);
      for (const socket of held) socket.destroy();
    }
  });

  test('afterwards: a real delivery confirms at once, no fuzzed delivery was confirmed, RSS is back within 10 MB, no crash', async () => {
    // The held connections are gone once the server has seen them close: then a new one is accepted.
    const { bytes, deliveryId } = await fetchBundle(server.url, contentId);
    const { data } = openPluginData(pluginRecordOf(bytes), {});
    const asked = Date.now();
    const answer = await eventually(
      () => exchangeRaw(server.confirmPort, [realFrame(data.confirmSecret, deliveryId, sha256)]),
      (o) => o.answers[0]?.status !== AnswerStatus.TryLater,
    );
    expect(answer.answers.map((a) => answerStatusName(a.status))).toEqual(['accepted']);
    figures.set('realConfirmationAfterFuzzMs', Date.now() - asked);

    const confirmed = await sql<{ id: string }>(server.databaseUrl!, `SELECT id FROM deliveries WHERE status = 'confirmed'`);
    expect(confirmed.map((row) => row.id)).toEqual([deliveryId]);
    const events = await sql<{ n: string }>(server.databaseUrl!, `SELECT count(*) AS n FROM delivery_events WHERE type = 'confirmed'`);
    expect(Number(events[0].n)).toBe(1);

    const start = figures.get('rssStartBytes') as number;
    const rss = await eventually(
      async () => rssBytes(server.pid),
      (value) => value <= start + 10 * 1024 * 1024,
      60_000,
      500,
    );
    figures.set('rssEndBytes', rss);
    figures.set('rssGrowthMiB', Math.round(((rss - start) / 1048576) * 10) / 10);
    expect(rss).toBeLessThanOrEqual(start + 10 * 1024 * 1024);
    expect(alive(server.pid)).toBe(true);
    figures.set('crashes', alive(server.pid) ? 0 : 1);
    expect(server.output()).not.toMatch(/uncaught|unhandled|FATAL ERROR|heap out of memory/i);
  });
});
