import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateServerKeySet } from '../protocol/keys.js';
import { AnswerStatus } from '../protocol/answer.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { DcxHome } from './home.js';
import { backoffDelayMs, NewOutboxEntry, OUTBOX_BACKOFF_BASE_MS, OUTBOX_BACKOFF_MAX_MS } from './outbox.js';
import { ConfirmEndpoint } from './testing/confirm-endpoint.js';
import { makeBundle } from './testing/bundles.js';
import { confirmationFrame, confirmationsUrl, ConfirmRequest } from './confirm-client.js';
import { removeTempDirs, tempDir } from './testing/temp-dirs.js';
import { createServer } from 'node:net';

afterAll(removeTempDirs);

/** A port nothing listens on (just closed again). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('backoffDelayMs', () => {
  test('full jitter: from 0 up to base·2^(n-1), capped', () => {
    expect(backoffDelayMs(1, undefined, () => 0)).toBe(0);
    expect(backoffDelayMs(1, undefined, () => 0.999999)).toBe(OUTBOX_BACKOFF_BASE_MS - 1);
    expect(backoffDelayMs(3, undefined, () => 0.5)).toBe(2 * OUTBOX_BACKOFF_BASE_MS);
    expect(backoffDelayMs(40, undefined, () => 0.999999)).toBeLessThan(OUTBOX_BACKOFF_MAX_MS);
    expect(backoffDelayMs(40, undefined, () => 0.999999)).toBeGreaterThan(OUTBOX_BACKOFF_MAX_MS - 10);
    for (let attempts = 1; attempts < 30; attempts++) {
      const delay = backoffDelayMs(attempts);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(OUTBOX_BACKOFF_MAX_MS, OUTBOX_BACKOFF_BASE_MS * 2 ** (attempts - 1)));
    }
  });

  test("the server's Retry-After is the floor", () => {
    expect(backoffDelayMs(1, 30_000, () => 0)).toBe(30_000);
    expect(backoffDelayMs(12, 1_000, () => 0.5)).toBeGreaterThan(1_000);
  });
});

describe('Outbox', () => {
  const keys = generateServerKeySet();
  let endpoint: ConfirmEndpoint;
  beforeAll(async () => {
    endpoint = await ConfirmEndpoint.start(keys);
  });
  afterAll(() => endpoint.stop());

  async function entryFor(port: number): Promise<{ home: DcxHome; entry: NewOutboxEntry }> {
    const home = new DcxHome(join(await tempDir(), 'home'));
    const { data } = await makeBundle({ keys, confirmPort: port, files: [{ name: 'a.txt', bytes: Buffer.from('hello') }] });
    endpoint.expect(data);
    const request: ConfirmRequest = {
      target: { host: '127.0.0.1', port },
      httpsUrl: confirmationsUrl('http://127.0.0.1:1'),
      deliveryId: data.deliveryId,
      confirmSecret: data.confirmSecret,
      clientFingerprint: data.client.fingerprint ?? '00'.repeat(32),
      digests: data.files.map((f) => f.sha256),
      serverSignPublicKey: keys.signPublicKey,
    };
    const frame = confirmationFrame(request);
    return {
      home,
      entry: {
        deliveryId: data.deliveryId,
        frame: frame.toString('base64'),
        tcp: request.target,
        httpsUrl: request.httpsUrl,
        serverSignKey: keys.signPublicKey.toString('base64url'),
        digests: request.digests,
        files: [{ path: '/x/a.txt', size: 5, sha256: request.digests[0] }],
      },
    };
  }

  test('add, get, list, remove: DCX_HOME/outbox/<id>.json, mode 0600, in a 0700 directory', async () => {
    const { home, entry } = await entryFor(endpoint.port);
    const outbox = home.outbox();
    const added = await outbox.add(entry, new Date('2026-12-03T10:00:00Z'));
    expect(added).toMatchObject({ attempts: 0, lastError: null, createdAt: '2026-12-03T10:00:00.000Z' });
    const path = join(home.dir, 'outbox', `${entry.deliveryId}.json`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(home.dir, 'outbox'))).mode & 0o777).toBe(0o700);
    expect(await outbox.get(entry.deliveryId)).toEqual(added);
    expect(await outbox.list()).toEqual([added]);
    await outbox.remove(entry.deliveryId);
    expect(await outbox.list()).toEqual([]);
    await expect(outbox.get('../../etc/passwd')).rejects.toThrow(/not a delivery id/);
  });

  test('recordFailure counts, keeps the error and puts the next attempt off within the backoff bounds', async () => {
    const { home, entry } = await entryFor(endpoint.port);
    const outbox = home.outbox();
    await outbox.add(entry);
    const now = new Date('2026-12-03T10:00:00Z');
    const first = (await outbox.recordFailure(entry.deliveryId, new Error('no route'), undefined, now))!;
    expect(first).toMatchObject({ attempts: 1, lastError: 'no route' });
    const wait = Date.parse(first.nextAttemptAt) - now.getTime();
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(wait).toBeLessThan(OUTBOX_BACKOFF_BASE_MS);
    const second = (await outbox.recordFailure(entry.deliveryId, new Error('busy'), 60_000, now))!;
    expect(second.attempts).toBe(2);
    expect(Date.parse(second.nextAttemptAt) - now.getTime()).toBeGreaterThanOrEqual(60_000);
  });

  test('send: the port unreachable keeps the entry (exit 6, failure recorded); reachable stores the receipt and removes it', async () => {
    const { home, entry } = await entryFor(await closedPort());
    const outbox = home.outbox();
    const added = await outbox.add(entry);
    const error = await outbox.send(added, { via: 'tcp', connectMs: 500 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DcxError);
    expect((error as DcxError).exitCode).toBe(ExitCode.ServerUnreachable);
    expect((await outbox.get(entry.deliveryId))?.attempts).toBe(1);

    const reachable = { ...(await outbox.get(entry.deliveryId))!, tcp: { host: '127.0.0.1', port: endpoint.port } };
    const outcome = await outbox.send(reachable, { via: 'tcp' });
    expect(outcome.status).toBe('accepted');
    expect(await outbox.get(entry.deliveryId)).toBeNull();
    await expect(stat(home.receiptPath(entry.deliveryId))).resolves.toBeTruthy();
  });

  test('send: a refusal is the server’s decision: exit 5 and the entry is removed', async () => {
    const { home, entry } = await entryFor(endpoint.port);
    const outbox = home.outbox();
    endpoint.override = (c) => ({ status: AnswerStatus.DigestMismatch, deliveryId: c.deliveryId, message: 'no', receipt: null });
    try {
      const error = await outbox.send(await outbox.add(entry), { via: 'tcp' }).catch((e: unknown) => e);
      expect((error as DcxError).exitCode).toBe(ExitCode.ConfirmationRefused);
      expect(await outbox.get(entry.deliveryId)).toBeNull();
    } finally {
      endpoint.override = null;
    }
  });
});
