import pg from 'pg';
import { CLIENT_KEY_HEADER, REQUEST_AUTH_HEADER, REQUEST_AUTH_MAX_SKEW_MS } from '../src/protocol/constants.js';
import { generateClientIdentity, type ClientIdentity } from '../src/protocol/keys.js';
import { clientRequestAuthKey, signRequest } from '../src/protocol/request-auth.js';
import { http } from './support/http.js';
import { DatabaseMode, RunningServer, startServer } from './support/server-process.js';

/**
 * Issue 15, who: enrolment codes, enrolment by a signed request of a fresh key, the refusals of signed
 * requests (each with its recipient event), recipients and groups, against the real built server.
 */

interface Pin {
  keyId: string;
  sealKey: Buffer;
}

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

interface SignOptions {
  now?: number;
  nonce?: Buffer;
  keyId?: string;
  /** Signs this path, but sends the request to `path`. */
  signedPath?: string;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, headers: response.headers };
}

async function pinOf(server: RunningServer): Promise<Pin> {
  const known = (await (await http(`${server.url}/.well-known/dcx`)).json()) as { keyId: string; sealKey: string };
  return { keyId: known.keyId, sealKey: Buffer.from(known.sealKey, 'base64url') };
}

/** A request signed by `identity` as a DCX client signs it (body = the JSON bytes sent). */
async function signed(
  server: RunningServer,
  pin: Pin,
  identity: ClientIdentity,
  method: string,
  path: string,
  json?: unknown,
  options: SignOptions = {},
): Promise<Answer> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const key = clientRequestAuthKey(identity.privateKey, identity.publicKey, pin.sealKey);
  const auth = signRequest(key, options.keyId ?? pin.keyId, { method, path: options.signedPath ?? path, body }, options);
  const headers: Record<string, string> = {
    [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url'),
    [REQUEST_AUTH_HEADER]: auth,
    connection: 'close',
    ...(body ? { 'content-type': 'application/json' } : {}),
  };
  return answer(await fetch(`${server.url}${path}`, { method, headers, body }));
}

async function admin(server: RunningServer, method: string, path: string, json?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${server.adminToken}`, connection: 'close' };
  if (json !== undefined) headers['content-type'] = 'application/json';
  return answer(await fetch(`${server.url}${path}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) }));
}

async function newCode(
  server: RunningServer,
  fields: Record<string, unknown> = {},
): Promise<{ id: string; code: string; expiresAt: string }> {
  const created = await admin(server, 'POST', '/api/recipients/enrolment-codes', { expiresIn: '1h', ...fields });
  expect(created.status).toBe(201);
  return created.body;
}

describe.each<DatabaseMode>(['postgres'])('recipients: enrolment, signed requests, groups (%s)', (mode) => {
  let server: RunningServer;
  let pin: Pin;
  let db: pg.Client;

  const eventsOf = async (fingerprint: string) =>
    (
      await db.query<{ type: string; reason: string | null; recipient_id: string | null }>(
        `SELECT type, reason, recipient_id FROM recipient_events WHERE fingerprint = $1 ORDER BY id`,
        [fingerprint],
      )
    ).rows;

  beforeAll(async () => {
    server = await startServer(mode);
    pin = await pinOf(server);
    db = new pg.Client({ connectionString: server.databaseUrl });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await server?.stop();
  });

  test('a code is shown once and stored hashed; enrolment 201, the same key again 200, another key 409 and recorded', async () => {
    const code = await newCode(server, { name: 'Ada Lovelace', email: 'ada@example.com', labels: ['sales', 'berlin'] });
    expect(code.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
    const stored = await db.query<{ code_hash: string }>(`SELECT code_hash FROM enrolment_codes WHERE id = $1`, [code.id]);
    expect(stored.rows[0].code_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored.rows)).not.toContain(code.code);

    const laptop = generateClientIdentity();
    const first = await signed(server, pin, laptop, 'POST', '/api/recipients/enrol', { code: code.code });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ recipientId: expect.any(String), name: 'Ada Lovelace', fingerprint: laptop.fingerprint });

    // Typed in lower case without the hyphen: the same code.
    const again = await signed(server, pin, laptop, 'POST', '/api/recipients/enrol', { code: code.code.replace('-', '').toLowerCase() });
    expect(again).toMatchObject({ status: 200, body: first.body });

    const intruder = generateClientIdentity();
    const taken = await signed(server, pin, intruder, 'POST', '/api/recipients/enrol', { code: code.code });
    expect(taken).toMatchObject({ status: 409, body: { message: 'enrolment code already used by another installation' } });
    expect(await eventsOf(intruder.fingerprint)).toEqual([
      { type: 'enrolment-refused', reason: 'enrolment code already used by another installation', recipient_id: null },
    ]);

    const me = await signed(server, pin, laptop, 'GET', '/api/recipients/me');
    expect(me).toMatchObject({
      status: 200,
      body: { recipientId: first.body.recipientId, name: 'Ada Lovelace', email: 'ada@example.com' },
    });
    const detail = await admin(server, 'GET', `/api/recipients/${first.body.recipientId}`);
    expect(detail.body).toMatchObject({
      labels: ['sales', 'berlin'],
      installations: [{ fingerprint: laptop.fingerprint, revokedAt: null }],
    });
  });

  test('unknown, malformed and expired codes: 404, 400, 410, each recorded', async () => {
    const key = generateClientIdentity();
    const unknown = await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: '0000-0000', name: 'X' });
    expect(unknown).toMatchObject({ status: 404, body: { message: 'unknown enrolment code' } });
    const malformed = await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: 'UUUU-UUUU', name: 'X' });
    expect(malformed).toMatchObject({ status: 400, body: { message: 'code must be an enrolment code such as 7K3M-Q9XD' } });

    const code = await newCode(server, { name: 'Late', expiresIn: '1s' });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const expired = await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: code.code });
    expect(expired.status).toBe(410);
    expect(expired.body.message).toMatch(/^enrolment code expired on \d{4}-/);
    expect((await eventsOf(key.fingerprint)).map((event) => event.type)).toEqual([
      'enrolment-refused',
      'enrolment-refused',
      'enrolment-refused',
    ]);
    expect(await db.query(`SELECT 1 FROM recipient_installations WHERE fingerprint = $1`, [key.fingerprint])).toMatchObject({
      rowCount: 0,
    });
  });

  test('a code without a name takes the name the person gives; without either, 400', async () => {
    const code = await newCode(server);
    const key = generateClientIdentity();
    const nameless = await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: code.code });
    expect(nameless).toMatchObject({ status: 400, body: { message: 'this enrolment code names no recipient: give your name' } });
    const named = await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: code.code, name: 'Grace Hopper' });
    expect(named).toMatchObject({ status: 201, body: { name: 'Grace Hopper' } });
  });

  test('two keys racing on one code: exactly one wins', async () => {
    const code = await newCode(server, { name: 'Raced' });
    const keys = Array.from({ length: 6 }, () => generateClientIdentity());
    const answers = await Promise.all(keys.map((key) => signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: code.code })));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    const bound = await db.query(
      `SELECT fingerprint FROM recipient_installations i JOIN enrolment_codes c ON c.used_by = i.fingerprint WHERE c.id = $1`,
      [code.id],
    );
    expect(bound.rowCount).toBe(1);
  });

  test('signed requests refused: stale, replayed, bad MAC, unknown kid, missing, not enrolled, revoked; each a recipient event', async () => {
    const key = generateClientIdentity();
    const code = await newCode(server, { name: 'Signer' });
    expect((await signed(server, pin, key, 'POST', '/api/recipients/enrol', { code: code.code })).status).toBe(201);
    expect((await signed(server, pin, key, 'GET', '/api/recipients/me')).status).toBe(200);

    const stale = await signed(server, pin, key, 'GET', '/api/recipients/me', undefined, {
      now: Date.now() - REQUEST_AUTH_MAX_SKEW_MS - 5000,
    });
    expect(stale).toMatchObject({ status: 401, body: { message: 'stale timestamp' } });
    expect(stale.headers.get('www-authenticate')).toBe('DCX1');

    const nonce = Buffer.alloc(16, 7);
    expect((await signed(server, pin, key, 'GET', '/api/recipients/me', undefined, { nonce })).status).toBe(200);
    const replay = await signed(server, pin, key, 'GET', '/api/recipients/me', undefined, { nonce });
    expect(replay).toMatchObject({ status: 401, body: { message: 'nonce already used' } });

    const badMac = await signed(server, pin, key, 'GET', '/api/recipients/me', undefined, { signedPath: '/api/recipients/me?other' });
    expect(badMac).toMatchObject({ status: 401, body: { message: 'bad signature' } });

    const unknownKid = await signed(server, pin, key, 'GET', '/api/recipients/me', undefined, { keyId: '0123456789abcdef' });
    expect(unknownKid).toMatchObject({ status: 401, body: { message: 'unknown server key id 0123456789abcdef; run dcx trust' } });

    const missing = await answer(await fetch(`${server.url}/api/recipients/me`, { headers: { connection: 'close' } }));
    expect(missing).toMatchObject({ status: 401, body: { message: 'missing DCX-Auth' } });

    const stranger = generateClientIdentity();
    const notEnrolled = await signed(server, pin, stranger, 'GET', '/api/recipients/me');
    expect(notEnrolled).toMatchObject({ status: 401, body: { message: 'this installation is not enrolled' } });

    const revoked = await admin(server, 'POST', `/api/recipients/installations/${key.fingerprint}/revoke`);
    expect(revoked).toMatchObject({ status: 200, body: { fingerprint: key.fingerprint, revokedAt: expect.any(String) } });
    const refused = await signed(server, pin, key, 'GET', '/api/recipients/me');
    expect(refused).toMatchObject({ status: 403, body: { message: `this installation was revoked on ${revoked.body.revokedAt}` } });

    const reasons = (await eventsOf(key.fingerprint)).filter((event) => event.type === 'request-refused').map((event) => event.reason);
    expect(reasons).toEqual([
      'stale timestamp',
      'nonce already used',
      'bad signature',
      `unknown server key id 0123456789abcdef; run dcx trust`,
      expect.stringMatching(/^this installation was revoked on /),
    ]);
    expect((await eventsOf(stranger.fingerprint)).map((event) => event.reason)).toEqual(['this installation is not enrolled']);
  });
});
