import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipArchive } from 'archiver';
import unzipper from 'unzipper';
import { AnswerStatus } from '../src/protocol/answer.js';
import { encodeConfirmation } from '../src/protocol/confirmation.js';
import { BUNDLE_MEDIA_TYPE, CLIENT_KEY_HEADER, PLUGIN_ENTRY_NAME } from '../src/protocol/constants.js';
import { generateClientIdentity } from '../src/protocol/keys.js';
import { openPluginData, PluginData } from '../src/protocol/plugin-data.js';
import { verifyReceipt } from '../src/protocol/receipt.js';
import { dcx, newClientHome } from './support/cli-process.js';
import { DatabaseMode, RunningServer, startServer } from './support/server-process.js';
import { http } from './support/http.js';
import { exchange } from './support/tcp.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function publish(server: RunningServer, path: string): Promise<{ id: string; bundleUrl: string }> {
  const result = await dcx(['publish', path, '--server', server.url, '--json'], {
    DCX_HOME: await newClientHome(),
    DCX_ADMIN_TOKEN: server.adminToken,
  });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { id: string; bundleUrl: string };
}

async function deliveryOf(server: RunningServer, id: string) {
  const response = await server.admin(`/api/deliveries/${id}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { status: string; events: { type: string; reason: string | null }[]; confirmedAt: string | null };
}

async function pluginDataOf(bundle: Buffer, identity?: ReturnType<typeof generateClientIdentity>): Promise<PluginData> {
  const zip = await unzipper.Open.buffer(bundle);
  expect(zip.files[0].path).toBe(PLUGIN_ENTRY_NAME);
  return openPluginData(await zip.files[0].buffer(), { identity }).data;
}

describe.each<DatabaseMode>(['postgres', 'pglite'])('confirmed delivery end to end (%s)', (mode) => {
  let server: RunningServer;
  let work: string;
  let original: Buffer;
  let content: { id: string; bundleUrl: string };

  beforeAll(async () => {
    server = await startServer(mode);
    work = await mkdtemp(join(tmpdir(), 'dcx-e2e-'));
    original = randomBytes(3 * 1024 * 1024 + 17); // several chunks, and containing no accidental structure
    await writeFile(join(work, 'movie.mp4'), original);
    content = await publish(server, join(work, 'movie.mp4'));
  });

  afterAll(async () => {
    await server?.stop();
  });

  test('dcx publish keeps the media type: by the bytes for a PDF, by the name for text', async () => {
    await writeFile(join(work, 'policy.pdf'), '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');
    await writeFile(join(work, 'scan'), '%PDF-1.4\n%%EOF\n'); // no extension: the bytes alone tell
    await writeFile(join(work, 'notes.md'), '# Notes\n');
    for (const [name, expected] of [
      ['policy.pdf', 'application/pdf'],
      ['scan', 'application/pdf'],
      ['notes.md', 'text/markdown'],
      ['movie.mp4', 'video/mp4'], // random bytes: the name decides
    ]) {
      const { id } = await publish(server, join(work, name));
      const stored = (await (await server.admin(`/api/contents/${id}`)).json()) as { mediaType: string };
      expect({ name, mediaType: stored.mediaType }).toEqual({ name, mediaType: expected });
    }
  });

  test('publish → fetch: the saved bytes equal the original and the delivery is confirmed', async () => {
    const home = await newClientHome();
    const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
    const result = await dcx(['fetch', content.bundleUrl, '--out', out, '--json'], { DCX_HOME: home });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      deliveryId: string;
      status: string;
      files: { path: string; size: number; sha256: string }[];
      receipt: string;
    };
    expect(report.status).toBe('accepted');
    expect(report.files).toHaveLength(1);
    expect(report.files[0].path).toBe(join(out, 'movie.mp4'));
    expect((await readFile(join(out, 'movie.mp4'))).equals(original)).toBe(true);
    expect(report.files[0].sha256).toBe(sha256(original));

    const delivery = await deliveryOf(server, report.deliveryId);
    expect(delivery.status).toBe('confirmed');
    expect(delivery.events.map((e) => e.type)).toEqual(expect.arrayContaining(['issued', 'sent', 'confirmed']));

    const wellKnown = (await (await http(`${server.url}/.well-known/dcx`)).json()) as { serverKey: string };
    const receipt = verifyReceipt(Buffer.from(report.receipt, 'base64'), Buffer.from(wellKnown.serverKey, 'base64url'));
    expect(receipt.deliveryId).toBe(report.deliveryId);
    expect(receipt.files[0].sha256).toBe(sha256(original));

    // A second fetch is a second delivery, confirmed with the same bytes: the file already saved there (same name,
    // size and SHA-256) is recognised, not written again as "movie (1).mp4" (issue 21).
    const again = await dcx(['fetch', content.bundleUrl, '--out', out, '--json'], { DCX_HOME: home });
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout) as { deliveryId: string; files: { path: string; alreadySaved?: boolean }[] };
    expect(second.deliveryId).not.toBe(report.deliveryId);
    expect(second.files[0]).toMatchObject({ path: report.files[0].path, alreadySaved: true });
    expect(await readdir(out)).toEqual(['movie.mp4']);
    expect((await deliveryOf(server, second.deliveryId)).status).toBe('confirmed');

    // Another file of that name is never replaced: the content gets the next free name.
    await writeFile(join(out, 'movie.mp4'), "the user's own movie");
    const third = await dcx(['fetch', content.bundleUrl, '--out', out, '--json'], { DCX_HOME: home });
    expect(third.code).toBe(0);
    expect((JSON.parse(third.stdout) as { files: { path: string }[] }).files[0].path).toBe(join(out, 'movie (1).mp4'));
    expect(await readFile(join(out, 'movie.mp4'), 'utf8')).toBe("the user's own movie");
  });

  test('a browser-style GET saves a .dcx; `dcx open` confirms it, and refuses an unpinned server without --trust', async () => {
    const response = await http(content.bundleUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain(BUNDLE_MEDIA_TYPE);
    expect(response.headers.get('content-disposition')).toContain('movie.mp4.dcx');
    const deliveryId = response.headers.get('dcx-delivery-id')!;
    const bundlePath = join(work, 'movie.mp4.dcx');
    await writeFile(bundlePath, Buffer.from(await response.arrayBuffer()));

    const home = await newClientHome();
    const out = await mkdtemp(join(tmpdir(), 'dcx-out-'));
    const refused = await dcx(['open', bundlePath, '--out', out], { DCX_HOME: home });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/not pinned|trust/i);
    expect(await readdir(out)).toEqual([]);
    expect((await deliveryOf(server, deliveryId)).status).toBe('sent');

    const opened = await dcx(['open', bundlePath, '--out', out, '--trust', '--json'], { DCX_HOME: home });
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject({ deliveryId, status: 'accepted' });
    expect((await readFile(join(out, 'movie.mp4'))).equals(original)).toBe(true);
    expect((await deliveryOf(server, deliveryId)).status).toBe('confirmed');

    // Opening the same bundle again: "already confirmed", exit 0, nothing changes on the server.
    const before = await deliveryOf(server, deliveryId);
    const repeat = await dcx(['open', bundlePath, '--out', out, '--json'], { DCX_HOME: home });
    expect(repeat.code).toBe(0);
    expect(JSON.parse(repeat.stdout)).toMatchObject({ deliveryId, status: 'already_confirmed' });
    expect(await deliveryOf(server, deliveryId)).toEqual(before);
  });

  test('concurrent requests: each bundle opens only with its own client key; a low-order key is refused alone', async () => {
    // Sent at once, so that they are issued together (one statement for all their rows).
    const identities = Array.from({ length: 12 }, () => generateClientIdentity());
    const lowOrderKey = Buffer.alloc(32).toString('base64url'); // X25519 agrees on nothing with it
    const [refused, ...answers] = await Promise.all([
      http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: lowOrderKey } }),
      ...identities.map((identity) =>
        http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } }),
      ),
    ]);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toBe('DCX-Client-Key is not a usable X25519 public key');
    const bundles = await Promise.all(
      answers.map(async (answer) => (expect(answer.status).toBe(200), Buffer.from(await answer.arrayBuffer()))),
    );
    const ids = new Set<string>();
    for (const [i, bundle] of bundles.entries()) {
      const data = await pluginDataOf(bundle, identities[i]);
      expect(data.client.fingerprint).toBe(createHash('sha256').update(identities[i].publicKey).digest('hex'));
      ids.add(data.deliveryId);
      // Another client's key cannot open it.
      await expect(pluginDataOf(bundle, identities[(i + 1) % identities.length])).rejects.toThrow();
    }
    expect(ids.size).toBe(identities.length);
  });

  test('wrong secret, wrong client and wrong digest are refused, recorded, and confirm nothing', async () => {
    const identity = generateClientIdentity();
    const response = await http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
    const data = await pluginDataOf(Buffer.from(await response.arrayBuffer()), identity);
    expect(data.client.fingerprint).toBe(identity.fingerprint);
    const good = { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [sha256(original)] };

    const [wrongSecret] = await exchange(server.confirmPort, encodeConfirmation(good, randomBytes(32)));
    expect(wrongSecret.status).toBe(AnswerStatus.SealInvalid);
    const [wrongClient] = await exchange(
      server.confirmPort,
      encodeConfirmation({ ...good, clientFingerprint: generateClientIdentity().fingerprint }, data.confirmSecret),
    );
    expect(wrongClient.status).toBe(AnswerStatus.ClientMismatch);
    const [wrongDigest] = await exchange(
      server.confirmPort,
      encodeConfirmation({ ...good, digests: [sha256(Buffer.from('something else'))] }, data.confirmSecret),
    );
    expect(wrongDigest.status).toBe(AnswerStatus.DigestMismatch);
    const [unknown] = await exchange(
      server.confirmPort,
      encodeConfirmation({ ...good, deliveryId: '00112233-4455-6677-8899-aabbccddeeff' }, data.confirmSecret),
    );
    expect(unknown.status).toBe(AnswerStatus.Unknown);

    const delivery = await deliveryOf(server, data.deliveryId);
    expect(delivery.status).toBe('sent');
    expect(delivery.confirmedAt).toBeNull();
    expect(delivery.events.filter((e) => e.type === 'refused').map((e) => e.reason)).toEqual([
      'seal_invalid',
      'client_mismatch',
      'digest_mismatch',
    ]);

    // The right one still works afterwards, and a repeat returns the same receipt.
    const [accepted] = await exchange(server.confirmPort, encodeConfirmation(good, data.confirmSecret));
    expect(accepted.status).toBe(AnswerStatus.Accepted);
    const [repeat] = await exchange(server.confirmPort, encodeConfirmation(good, data.confirmSecret));
    expect(repeat.status).toBe(AnswerStatus.AlreadyConfirmed);
    expect(repeat.receipt).toEqual(accepted.receipt);
    expect((await deliveryOf(server, data.deliveryId)).status).toBe('confirmed');
  });

  test('one delivery confirmed over many connections at once: one acceptance, one event, the same receipt for all', async () => {
    const identity = generateClientIdentity();
    const response = await http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
    const data = await pluginDataOf(Buffer.from(await response.arrayBuffer()), identity);
    const frame = () =>
      encodeConfirmation(
        { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [sha256(original)] },
        data.confirmSecret,
      );
    const answers = (
      await Promise.all(Array.from({ length: 12 }, () => exchange(server.confirmPort, Buffer.concat([frame(), frame()]), 2)))
    ).flat();
    expect(answers).toHaveLength(24);
    expect(answers.filter((a) => a.status === AnswerStatus.Accepted)).toHaveLength(1);
    expect(answers.filter((a) => a.status === AnswerStatus.AlreadyConfirmed)).toHaveLength(23);
    expect(new Set(answers.map((a) => a.receipt?.toString('hex'))).size).toBe(1);
    const delivery = await deliveryOf(server, data.deliveryId);
    expect(delivery.status).toBe('confirmed');
    expect(delivery.events.filter((e) => e.type === 'confirmed')).toHaveLength(1);
  });

  test('random bytes on the TCP port get "malformed"; the next good confirmation is still answered', async () => {
    const identity = generateClientIdentity();
    const response = await http(content.bundleUrl, { headers: { [CLIENT_KEY_HEADER]: identity.publicKey.toString('base64url') } });
    const data = await pluginDataOf(Buffer.from(await response.arrayBuffer()), identity);

    // Frame-shaped garbage names no delivery; a frame too short for a delivery id is malformed.
    const frameShaped = await exchange(server.confirmPort, Buffer.concat([Buffer.from([0, 0, 0, 40, 1, 1]), randomBytes(34)]));
    expect(frameShaped.map((a) => a.status)).toEqual([AnswerStatus.Unknown]);
    const short = await exchange(server.confirmPort, Buffer.concat([Buffer.from([0, 0, 0, 10, 1, 1]), randomBytes(4)]));
    expect(short.map((a) => a.status)).toEqual([AnswerStatus.Malformed]);
    const huge = await exchange(server.confirmPort, Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 1]));
    expect(huge.map((a) => a.status)).toEqual([AnswerStatus.Malformed]);
    expect(huge[0].message).toMatch(/exceeds/);
    await exchange(server.confirmPort, randomBytes(4096), 1).catch(() => []);

    const [accepted] = await exchange(
      server.confirmPort,
      encodeConfirmation(
        { deliveryId: data.deliveryId, clientFingerprint: identity.fingerprint, digests: [sha256(original)] },
        data.confirmSecret,
      ),
    );
    expect(accepted.status).toBe(AnswerStatus.Accepted);
  });

  test('a bundle whose entry names try ../ writes nothing outside DIR', async () => {
    const response = await http(content.bundleUrl);
    const genuine = await unzipper.Open.buffer(Buffer.from(await response.arrayBuffer()));
    const archive = new ZipArchive({ store: true });
    const chunks: Buffer[] = [];
    archive.on('data', (chunk: Buffer) => chunks.push(chunk));
    const done = new Promise((resolve) => archive.on('end', resolve));
    archive.append(await genuine.files[0].buffer(), { name: PLUGIN_ENTRY_NAME });
    archive.append(Buffer.from('escaped'), { name: '../../escaped.txt' });
    archive.append(original, { name: 'movie.mp4' });
    await archive.finalize();
    await done;
    const base = await mkdtemp(join(tmpdir(), 'dcx-trick-'));
    const out = join(base, 'a', 'b');
    const bundlePath = join(base, 'trick.dcx');
    await writeFile(bundlePath, Buffer.concat(chunks));

    const result = await dcx(['open', bundlePath, '--out', out, '--trust'], { DCX_HOME: await newClientHome() });
    expect(result.code).toBe(3);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await readdir(base)).toEqual(expect.not.arrayContaining(['escaped.txt']));
    expect(await readdir(join(base, 'a')).catch(() => [])).toEqual(expect.not.arrayContaining(['escaped.txt']));
  });

  test('a tampered bundle is refused as unusable and leaves no file', async () => {
    const bundle = Buffer.from(await (await http(content.bundleUrl)).arrayBuffer());
    const zip = await unzipper.Open.buffer(bundle);
    const pluginBytes = await zip.files[0].buffer();
    // Flip one byte inside the plug-in data as stored in the bundle.
    const at = bundle.indexOf(pluginBytes);
    expect(at).toBeGreaterThan(0);
    bundle[at + 100] ^= 0x01;
    const dir = await mkdtemp(join(tmpdir(), 'dcx-tamper-'));
    await writeFile(join(dir, 'x.dcx'), bundle);
    const out = join(dir, 'out');
    const result = await dcx(['open', join(dir, 'x.dcx'), '--out', out, '--trust'], { DCX_HOME: await newClientHome() });
    expect(result.code).toBe(3);
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  test('the admin API needs the token, and lists deliveries by status and content', async () => {
    expect((await http(`${server.url}/api/deliveries`)).status).toBe(401);
    expect((await http(`${server.url}/api/deliveries`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const response = await server.admin(`/api/deliveries?status=confirmed&contentId=${content.id}&pageSize=2`);
    expect(response.status).toBe(200);
    const page = (await response.json()) as { items: { status: string; contentId: string }[]; total: number };
    expect(page.total).toBeGreaterThanOrEqual(3);
    expect(page.items).toHaveLength(2);
    expect(page.items.every((d) => d.status === 'confirmed' && d.contentId === content.id)).toBe(true);
    expect((await server.admin('/api/deliveries?status=bogus')).status).toBe(400);
    expect((await server.admin('/api/deliveries/not-a-uuid')).status).toBe(400);
  });
});
