import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dcx, newClientHome } from './support/cli-process.js';
import { eventually } from './support/eventually.js';
import { http } from './support/http.js';
import { RunningServer, startServer } from './support/server-process.js';

/** Exact-length, deterministic, resumable bundles: Range on a delivery's own URL, never a new delivery. */
describe('bundle responses: Content-Length, Range, one delivery per bundle', () => {
  let server: RunningServer;
  let work: string;
  let bundleUrl: string;
  let contentId: string;
  const original = randomBytes(2 * 1024 * 1024 + 3);

  beforeAll(async () => {
    server = await startServer('postgres');
    work = await mkdtemp(join(tmpdir(), 'dcx-range-'));
    await writeFile(join(work, 'clip.mp4'), original);
    const published = await dcx(['publish', join(work, 'clip.mp4'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(published.code).toBe(0);
    ({ bundleUrl, id: contentId } = JSON.parse(published.stdout) as { bundleUrl: string; id: string });
  });

  afterAll(async () => {
    await server?.stop();
  });

  async function deliveriesOfContent(): Promise<{ id: string; status: string }[]> {
    const response = await server.admin(`/api/deliveries?contentId=${contentId}&pageSize=500`);
    return ((await response.json()) as { items: { id: string; status: string }[] }).items;
  }

  test('the bundle has an exact length, names its delivery, and is the same bytes on its delivery URL', async () => {
    const first = await http(bundleUrl);
    expect(first.status).toBe(200);
    const body = Buffer.from(await first.arrayBuffer());
    expect(first.headers.get('content-length')).toBe(String(body.length));
    expect(first.headers.get('accept-ranges')).toBe('bytes');
    const deliveryId = first.headers.get('dcx-delivery-id')!;
    expect(first.headers.get('content-location')).toBe(`/api/deliveries/${deliveryId}/bundle`);

    const again = await http(`${server.url}/api/deliveries/${deliveryId}/bundle`);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).toBe(true);
    expect((await deliveriesOfContent()).filter((d) => d.id === deliveryId)).toHaveLength(1);

    // Info-ZIP, zipinfo and Python's zipfile all read the server's bundle.
    const path = join(work, 'clip.mp4.dcx');
    await writeFile(path, body);
    expect(execFileSync('unzip', ['-t', path]).toString()).toMatch(/No errors detected/);
    expect(execFileSync('zipinfo', [path]).toString()).toContain('clip.mp4');
    const script = 'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(len(z.read("clip.mp4")))';
    expect(execFileSync('python3', ['-c', script, path]).toString().trim()).toBe(String(original.length));
  });

  test('every class of range gives exactly those bytes of the full body, and issues nothing', async () => {
    const full = await http(bundleUrl);
    const body = Buffer.from(await full.arrayBuffer());
    const location = `${server.url}${full.headers.get('content-location')}`;
    const etag = full.headers.get('etag')!;
    const size = body.length;
    const before = (await deliveriesOfContent()).length;

    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=0-99', 0, 99],
      ['bytes=100-', 100, size - 1],
      [`bytes=${size >> 1}-${(size >> 1) + 65535}`, size >> 1, (size >> 1) + 65535],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
      [`bytes=${size - 1}-`, size - 1, size - 1],
      ['bytes=-500', size - 500, size - 1],
      [`bytes=0-${size + 1000}`, 0, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const response = await http(location, { headers: { range } });
      expect([range, response.status]).toEqual([range, 206]);
      expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
      expect(response.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await response.arrayBuffer()).equals(body.subarray(start, end + 1))).toBe(true);
    }

    const outOfRange = await http(location, { headers: { range: `bytes=${size}-` } });
    expect(outOfRange.status).toBe(416);
    expect(outOfRange.headers.get('content-range')).toBe(`bytes */${size}`);
    // Malformed ranges and a stale If-Range are ignored: the whole body, 200.
    for (const headers of [{ range: 'bytes=abc' }, { range: 'items=0-5' }, { range: 'bytes=0-5', 'if-range': '"another"' }] as Record<
      string,
      string
    >[]) {
      const response = await http(location, { headers });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
    }
    const current = await http(location, { headers: { range: 'bytes=0-5', 'if-range': etag } });
    expect(current.status).toBe(206);

    expect((await deliveriesOfContent()).length).toBe(before);
    expect((await http(`${server.url}/api/deliveries/00000000-0000-0000-0000-000000000000/bundle`)).status).toBe(404);
    expect((await http(`${server.url}/api/deliveries/not-an-id/bundle`)).status).toBe(400);
  });

  test('HEAD issues no delivery and marks none; a repeated ?access= is 400, not 500', async () => {
    const before = (await deliveriesOfContent()).length;
    const head = await http(bundleUrl, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/vnd.dcx.bundle+zip');
    expect(head.headers.get('dcx-delivery-id')).toBeNull();
    expect((await deliveriesOfContent()).length).toBe(before);

    const full = await http(bundleUrl);
    const length = (await full.arrayBuffer()).byteLength;
    const deliveryId = full.headers.get('dcx-delivery-id')!;
    const again = await http(`${server.url}/api/deliveries/${deliveryId}/bundle`, { method: 'HEAD' });
    expect(again.status).toBe(200);
    expect(again.headers.get('content-length')).toBe(String(length));
    expect(again.headers.get('etag')).toBe(`"${deliveryId}"`);
    expect((await deliveriesOfContent()).length).toBe(before + 1);
    expect((await http(`${server.url}/api/deliveries/00000000-0000-0000-0000-000000000000/bundle`, { method: 'HEAD' })).status).toBe(404);

    expect((await http(`${bundleUrl}?access=a&access=b`)).status).toBe(400);
    expect((await http(`${server.url}/api/deliveries/${deliveryId}/bundle?access=a&access=b`)).status).toBe(400);
  });

  test('a download cut off is "failed"; completing it with a range makes it "sent"; curl -C - resumes to identical bytes', async () => {
    const full = await http(bundleUrl);
    const body = Buffer.from(await full.arrayBuffer());
    const location = `${server.url}${full.headers.get('content-location')}`;
    const deliveryId = full.headers.get('dcx-delivery-id')!;

    const path = join(work, 'resumed.dcx');
    const cut = 777_777;
    await writeFile(path, body.subarray(0, cut));
    execFileSync('curl', ['-sS', '-f', '-C', '-', '-o', path, location]);
    expect(execFileSync('cmp', [path, '-'], { input: body }).toString()).toBe('');

    // A client that hangs up mid-body: the delivery of a fresh request is recorded as failed. The content
    // is far larger than loopback socket buffers, so the server cannot have written its last byte.
    await writeFile(join(work, 'long.mp4'), randomBytes(48 * 1024 * 1024));
    const long = await dcx(['publish', join(work, 'long.mp4'), '--server', server.url, '--json'], {
      DCX_HOME: await newClientHome(),
      DCX_ADMIN_TOKEN: server.adminToken,
    });
    expect(long.code).toBe(0);
    const longBundleUrl = (JSON.parse(long.stdout) as { bundleUrl: string }).bundleUrl;
    const fresh = await new Promise<string>((resolve, reject) => {
      import('node:http').then(({ get }) => {
        const request = get(longBundleUrl, { agent: false }, (response) => {
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > 100_000) request.destroy();
          });
          resolve(response.headers['dcx-delivery-id'] as string);
        });
        request.on('error', () => undefined);
      }, reject);
    });
    type View = { status: string; events: { type: string }[] };
    const view = async () => (await (await server.admin(`/api/deliveries/${fresh}`)).json()) as View;
    expect((await eventually(view, (d) => d.status === 'failed')).status).toBe('failed');
    const rest = await http(`${server.url}/api/deliveries/${fresh}/bundle`, { headers: { range: 'bytes=100000-' } });
    expect(rest.status).toBe(206);
    await rest.arrayBuffer();
    // markSent commits just after the last byte left: poll rather than race it.
    const after = await eventually(view, (d) => d.status === 'sent');
    expect(after.status).toBe('sent');
    expect(after.events.map((e) => e.type)).toEqual(['issued', 'failed', 'sent']);
    expect(deliveryId).not.toBe(fresh);
  });
});
