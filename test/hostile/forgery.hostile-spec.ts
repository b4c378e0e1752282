import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Answer, answerStatusName, decodeAnswer } from '../../src/protocol/answer.js';
import { encodeConfirmation } from '../../src/protocol/confirmation.js';
import { FrameParser } from '../../src/protocol/frame.js';
import { generateClientIdentity, ClientIdentity } from '../../src/protocol/keys.js';
import { openPluginData, PluginData } from '../../src/protocol/plugin-data.js';
import { RunningServer, startServer } from '../support/server-process.js';
import { fetchBundle, Figures, pluginRecordOf, scale, sql, upload } from './support/hostile.js';

/** One frame on its own connection (from `localAddress`), its one answer. */
function confirmOnce(port: number, frame: Buffer, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const parser = new FrameParser();
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => socket.write(frame));
    socket.setTimeout(30_000, () => socket.destroy(new Error('no answer within 30 s')));
    socket.on('data', (chunk) =>
      parser.parse(chunk, (f) => {
        resolve(decodeAnswer(f));
        socket.end();
      }),
    );
    socket.on('error', reject);
  });
}

interface Issued {
  deliveryId: string;
  data: PluginData;
}

/**
 * Forged and replayed confirmations against real deliveries: each is refused with its reason and the
 * refusal is in the audit trail; 100 concurrent duplicates of one valid confirmation make exactly one
 * `confirmed` transition and one receipt.
 */
describe('hostile: forged and replayed confirmations (postgres)', () => {
  let server: RunningServer;
  const figures = new Figures('forgery');
  let sha256: string;
  let contentId: string;
  const alice: ClientIdentity = generateClientIdentity();
  const mallory: ClientIdentity = generateClientIdentity();

  beforeAll(async () => {
    server = await startServer('postgres', { LOG_LEVEL: 'warn' });
    ({ id: contentId, sha256 } = await upload(server, 'policy.pdf', randomBytes(10_000)));
  });

  afterAll(async () => {
    figures.write();
    await server?.stop();
  });

  /** A new delivery sealed to `client` (or anonymous), opened as that client would. */
  async function issue(client: ClientIdentity | null): Promise<Issued> {
    const headers: Record<string, string> = client ? { 'dcx-client-key': client.publicKey.toString('base64url') } : {};
    const { bytes, deliveryId } = await fetchBundle(server.url, contentId, headers);
    const { data } = openPluginData(pluginRecordOf(bytes), client ? { identity: client } : {});
    return { deliveryId, data };
  }

  const frame = (deliveryId: string, secret: Buffer, fingerprint: string, digest = sha256) =>
    encodeConfirmation({ deliveryId, clientFingerprint: fingerprint, digests: [digest] }, secret);

  async function events(deliveryId: string): Promise<{ type: string; reason: string | null }[]> {
    return sql(server.databaseUrl!, `SELECT type, reason FROM delivery_events WHERE delivery_id = $1 ORDER BY id`, [deliveryId]);
  }

  async function status(deliveryId: string): Promise<{ status: string; receipt: Buffer | null }> {
    return (
      await sql<{ status: string; receipt: Buffer | null }>(server.databaseUrl!, `SELECT status, receipt FROM deliveries WHERE id = $1`, [
        deliveryId,
      ])
    )[0];
  }

  const refusals = async (deliveryId: string) => (await events(deliveryId)).filter((e) => e.type === 'refused').map((e) => e.reason);

  test('each forgery is refused with its reason, recorded, and leaves its delivery unconfirmed', async () => {
    const one = await issue(alice);
    const other = await issue(alice);
    const cases: { name: string; deliveryId: string; bytes: Buffer; localAddress?: string; status: string }[] = [];

    // A valid confirmation of one delivery, replayed for another: its ciphertext under the other's id.
    const valid = frame(one.deliveryId, one.data.confirmSecret, alice.fingerprint);
    const replayed = Buffer.from(valid);
    Buffer.from(other.deliveryId.replaceAll('-', ''), 'hex').copy(replayed, 6);
    cases.push({ name: 'replay for another delivery', deliveryId: other.deliveryId, bytes: replayed, status: 'seal_invalid' });
    cases.push({
      name: "one delivery's secret used for another",
      deliveryId: other.deliveryId,
      bytes: frame(other.deliveryId, one.data.confirmSecret, alice.fingerprint),
      status: 'seal_invalid',
    });
    // The secret leaked to another installation: it confirms with its own key.
    const stolen = await issue(alice);
    cases.push({
      name: 'wrong client key',
      deliveryId: stolen.deliveryId,
      bytes: frame(stolen.deliveryId, stolen.data.confirmSecret, mallory.fingerprint),
      status: 'client_mismatch',
    });
    const wrongDigest = await issue(alice);
    cases.push({
      name: 'wrong digest',
      deliveryId: wrongDigest.deliveryId,
      bytes: frame(wrongDigest.deliveryId, wrongDigest.data.confirmSecret, alice.fingerprint, randomBytes(32).toString('hex')),
      status: 'digest_mismatch',
    });
    const late = await issue(alice);
    await sql(server.databaseUrl!, `UPDATE deliveries SET expires_at = now() - interval '1 second' WHERE id = $1`, [late.deliveryId]);
    cases.push({
      name: 'after expiry',
      deliveryId: late.deliveryId,
      bytes: frame(late.deliveryId, late.data.confirmSecret, alice.fingerprint),
      status: 'expired',
    });
    // An anonymous delivery is bound to the requester's address; the same bytes from another address are refused.
    const anonymous = await issue(null);
    cases.push({
      name: 'anonymous delivery from another address',
      deliveryId: anonymous.deliveryId,
      bytes: frame(anonymous.deliveryId, anonymous.data.confirmSecret, '00'.repeat(32)),
      localAddress: '127.0.0.2',
      status: 'client_mismatch',
    });
    const forgedSecret = await issue(alice);
    cases.push({
      name: 'guessed secret',
      deliveryId: forgedSecret.deliveryId,
      bytes: frame(forgedSecret.deliveryId, randomBytes(32), alice.fingerprint),
      status: 'seal_invalid',
    });

    for (const c of cases) {
      const before = await refusals(c.deliveryId);
      const answer = await confirmOnce(server.confirmPort, c.bytes, c.localAddress);
      expect([c.name, answerStatusName(answer.status), answer.receipt]).toEqual([c.name, c.status, null]);
      expect([c.name, await refusals(c.deliveryId)]).toEqual([c.name, [...before, c.status]]);
      expect([c.name, (await status(c.deliveryId)).status]).toEqual([c.name, expect.not.stringMatching(/^confirmed$/)]);
      figures.tally('refusedByReason', c.status);
    }
    figures.set('forgeryCases', cases.length);
    // The one that was never tampered with still confirms.
    expect(answerStatusName((await confirmOnce(server.confirmPort, valid)).status)).toBe('accepted');
  });

  test('100 concurrent duplicates of one valid confirmation: one accepted, the rest already confirmed with the same receipt; one transition', async () => {
    const duplicates = scale(100, 100);
    const rounds = scale(2, 10);
    for (let round = 0; round < rounds; round++) {
      const target = await issue(alice);
      const bytes = frame(target.deliveryId, target.data.confirmSecret, alice.fingerprint);
      const answers = await Promise.all(Array.from({ length: duplicates }, () => confirmOnce(server.confirmPort, bytes)));
      const statuses = answers.map((a) => answerStatusName(a.status));
      expect(statuses.filter((s) => s === 'accepted')).toHaveLength(1);
      expect(statuses.filter((s) => s !== 'accepted' && s !== 'already_confirmed')).toEqual([]);
      const row = await status(target.deliveryId);
      expect(row.status).toBe('confirmed');
      expect(answers.every((a) => a.receipt !== null && Buffer.from(a.receipt).equals(row.receipt!))).toBe(true);
      const trail = await events(target.deliveryId);
      expect(trail.filter((e) => e.type === 'confirmed')).toHaveLength(1);
      expect(trail.filter((e) => e.type === 'refused')).toEqual([]);
      for (const s of statuses) figures.tally('duplicateAnswers', s);
    }
    figures.set('duplicateRounds', rounds);
    const receipts = await sql<{ n: string }>(server.databaseUrl!, `SELECT count(*) AS n FROM deliveries WHERE receipt IS NOT NULL`);
    // The untampered confirmation of the first test, and one per round.
    expect(Number(receipts[0].n)).toBe(rounds + 1);
  });
});
