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

interface Page {
  items: { name: string }[];
  next: string | null;
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

/** Recipients made through real enrolments, as an admin then finds them. */
async function enrolled(server: RunningServer, pin: Pin, name: string, labels: string[], email?: string): Promise<string> {
  const code = await newCode(server, { name, labels, ...(email ? { email } : {}) });
  const answer = await signed(server, pin, generateClientIdentity(), 'POST', '/api/recipients/enrol', { code: code.code });
  expect(answer.status).toBe(201);
  return answer.body.recipientId as string;
}

describe.each<DatabaseMode>(['postgres', 'pglite'])('recipients and groups, admin (%s)', (mode) => {
  let server: RunningServer;
  let pin: Pin;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    server = await startServer(mode);
    pin = await pinOf(server);
    ids.ada = await enrolled(server, pin, 'Ada', ['sales', 'berlin'], 'ada@example.com');
    ids.bob = await enrolled(server, pin, 'Bob', ['sales', 'paris']);
    ids.cyd = await enrolled(server, pin, 'Cyd', ['berlin']);
    ids.dee = await enrolled(server, pin, 'Dee 100%_', []);
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('list: search by name or email, filter by labels, keyset pages', async () => {
    expect(((await admin(server, 'GET', '/api/recipients?search=EXAMPLE.com')).body as Page).items.map((r) => r.name)).toEqual(['Ada']);
    // % and _ are searched for as themselves.
    expect(((await admin(server, 'GET', '/api/recipients?search=0%25_')).body as Page).items.map((r) => r.name)).toEqual(['Dee 100%_']);
    expect(((await admin(server, 'GET', '/api/recipients?search=%25')).body as Page).items.map((r) => r.name)).toEqual(['Dee 100%_']);
    expect(((await admin(server, 'GET', '/api/recipients?label=sales&label=berlin')).body as Page).items.map((r) => r.name)).toEqual([
      'Ada',
    ]);
    const first = await admin(server, 'GET', '/api/recipients?limit=3');
    expect((first.body as Page).items.map((r) => r.name)).toEqual(['Ada', 'Bob', 'Cyd']);
    expect(first.body.items[0]).toMatchObject({ activeInstallations: 1, lastSeenAt: expect.any(String) });
    const second = await admin(server, 'GET', `/api/recipients?limit=3&after=${first.body.next}`);
    expect(second.body).toEqual({ items: [expect.objectContaining({ name: 'Dee 100%_' })], next: null });
    expect(await admin(server, 'GET', '/api/recipients?after=nonsense')).toMatchObject({
      status: 400,
      body: { message: 'after must be the `next` of a previous page' },
    });
    expect((await admin(server, 'GET', '/api/recipients?label=no%20spaces')).status).toBe(400);
    expect((await answer(await fetch(`${server.url}/api/recipients`, { headers: { connection: 'close' } }))).status).toBe(401);
  });

  test('patch: name, email, labels; an empty name 400; the change recorded', async () => {
    expect(await admin(server, 'PATCH', `/api/recipients/${ids.cyd}`, { name: '  ' })).toMatchObject({
      status: 400,
      body: { message: ['name must not be empty'] },
    });
    expect((await admin(server, 'PATCH', `/api/recipients/${ids.cyd}`, { name: null })).status).toBe(400);
    const patched = await admin(server, 'PATCH', `/api/recipients/${ids.cyd}`, { email: 'cyd@example.com', labels: ['berlin', 'sales'] });
    expect(patched).toMatchObject({ status: 200, body: { name: 'Cyd', email: 'cyd@example.com', labels: ['berlin', 'sales'] } });
    const events = await admin(server, 'GET', `/api/recipients/${ids.cyd}/events`);
    expect((events.body as { type: string }[]).map((event) => event.type)).toEqual(['recipient-updated', 'enrolled']);
    expect(events.body[0].detail).toEqual({
      email: { from: null, to: 'cyd@example.com' },
      labels: { from: ['berlin'], to: ['berlin', 'sales'] },
    });
    expect((await admin(server, 'PATCH', `/api/recipients/00000000-0000-4000-8000-000000000000`, { name: 'x' })).status).toBe(404);
  });

  test('groups: members and label selectors resolve; unknown members 400 naming them; duplicate name 409', async () => {
    const created = await admin(server, 'POST', '/api/groups', {
      name: 'Berlin sales',
      members: [ids.dee],
      selector: { labels: ['berlin', 'sales'] },
    });
    expect(created.status).toBe(201);
    const names = (group: Answer) =>
      (group.body as { members: { name: string; via: string[] }[] }).members.map((m) => `${m.name}:${m.via.join('+')}`);
    // Cyd's labels were patched to berlin+sales in the test before.
    expect(names(created)).toEqual(['Ada:selector', 'Cyd:selector', 'Dee 100%_:member']);
    expect(created.body).toMatchObject({ memberCount: 1, resolvedCount: 3, selector: { labels: ['berlin', 'sales'] } });

    const ghost = '00000000-0000-4000-8000-00000000beef';
    expect(await admin(server, 'POST', '/api/groups', { name: 'Ghosts', members: [ids.ada, ghost] })).toMatchObject({
      status: 400,
      body: { message: `unknown recipients: ${ghost}` },
    });
    expect(await admin(server, 'POST', '/api/groups', { name: 'Berlin sales' })).toMatchObject({
      status: 409,
      body: { message: 'a group named "Berlin sales" already exists' },
    });
    expect((await admin(server, 'POST', '/api/groups', { name: '' })).status).toBe(400);
    expect((await admin(server, 'POST', '/api/groups', { name: 'Empty selector', selector: { labels: [] } })).status).toBe(400);

    const changed = await admin(server, 'PATCH', `/api/groups/${created.body.id}`, {
      addMembers: [ids.bob, ids.ada],
      removeMembers: [ids.dee],
      selector: null,
    });
    expect(changed.status).toBe(200);
    expect(names(changed)).toEqual(['Ada:member', 'Bob:member']);
    expect(await admin(server, 'PATCH', `/api/groups/${created.body.id}`, { addMembers: [ghost] })).toMatchObject({ status: 400 });

    const other = await admin(server, 'POST', '/api/groups', { name: 'Paris', selector: { labels: ['paris'] } });
    expect(names(other)).toEqual(['Bob:selector']);
    expect((await admin(server, 'PATCH', `/api/groups/${other.body.id}`, { name: 'Berlin sales' })).status).toBe(409);
    expect(
      ((await admin(server, 'GET', '/api/groups')).body as { name: string; resolvedCount: number }[]).map((g) => [g.name, g.resolvedCount]),
    ).toEqual([
      ['Berlin sales', 2],
      ['Paris', 1],
    ]);

    expect((await admin(server, 'DELETE', `/api/groups/${other.body.id}`)).status).toBe(204);
    expect((await admin(server, 'GET', `/api/groups/${other.body.id}`)).status).toBe(404);
    expect((await admin(server, 'DELETE', `/api/groups/${other.body.id}`)).status).toBe(404);
  });
});
