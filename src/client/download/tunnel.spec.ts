// The CONNECT tunnel and httpDownload through it, against a real proxy (a CONNECT server on a socket of its
// own) and real node:http / node:https servers.
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo, connect, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { localhostCertificate } from '../testing/certificates.js';
import { removeTempDirs } from '../testing/temp-dirs.js';
import { httpDownload } from './connection.js';
import { openTunnel } from './tunnel.js';

const body = randomBytes(3 * 1024 * 1024 + 5);
const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
let http: Server;
let https: Server;
let proxy: TcpServer;
let ca: Buffer;
/** The heads of the CONNECT requests the proxy got. */
const heads: string[] = [];
/** What the proxy answers CONNECT with: null tunnels, a status refuses. */
let refuseWith: number | null = null;

const portOf = (server: Server | TcpServer) => (server.address() as AddressInfo).port;
const listen = (server: Server | TcpServer) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

beforeAll(async () => {
  const certificate = await localhostCertificate();
  ca = certificate.cert;
  const handler = (_req: unknown, res: import('node:http').ServerResponse) =>
    res.writeHead(200, { 'content-length': body.length }).end(body);
  http = createHttpServer(handler);
  https = createHttpsServer({ key: certificate.key, cert: ca }, handler);
  proxy = createTcpServer((client: Socket) => {
    client.on('error', () => client.destroy());
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      client.off('data', onData);
      heads.push(head);
      const [, authority] = head.split(' ');
      if (refuseWith !== null) return void client.end(`HTTP/1.1 ${refuseWith} No\r\ncontent-length: 0\r\n\r\n`);
      const colon = authority.lastIndexOf(':');
      const upstream = connect(Number(authority.slice(colon + 1)), '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
    };
    client.on('data', onData);
  });
  await Promise.all([listen(http), listen(https), listen(proxy)]);
});

afterAll(async () => {
  await Promise.all([http, https, proxy].map((s) => new Promise((resolve) => s.close(resolve))));
  await removeTempDirs();
});

const saved = { ...process.env };
beforeEach(() => {
  heads.length = 0;
  refuseWith = null;
  process.env.HTTP_PROXY = `http://127.0.0.1:${portOf(proxy)}`;
  process.env.HTTPS_PROXY = `http://127.0.0.1:${portOf(proxy)}`;
  delete process.env.NO_PROXY;
  delete process.env.no_proxy;
});
afterEach(() => {
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
});

async function download(url: string): Promise<Buffer> {
  const response = await httpDownload(url, {}, { tls: { ca } });
  expect(response.status).toBe(200);
  const chunks: Buffer[] = [];
  await response.read((chunk) => void chunks.push(Buffer.from(chunk)));
  return Buffer.concat(chunks);
}

test('openTunnel: CONNECT host:port with the proxy URL’s credentials as Basic, then the target’s bytes', async () => {
  const socket = await openTunnel(new URL(`http://alice:s%40cret@127.0.0.1:${portOf(proxy)}`), { host: '127.0.0.1', port: portOf(http) });
  expect(heads[0]).toMatch(new RegExp(`^CONNECT 127\\.0\\.0\\.1:${portOf(http)} HTTP/1\\.1\r\n`));
  expect(heads[0]).toContain(`proxy-authorization: Basic ${Buffer.from('alice:s@cret').toString('base64')}`);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('end', () => resolve(text));
    socket.resume();
    socket.write('HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  });
  expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
});

test('httpDownload goes through the proxy for http and for https (TLS inside the tunnel, certificate verified)', async () => {
  expect(digest(await download(`http://127.0.0.1:${portOf(http)}/x`))).toBe(digest(body));
  expect(digest(await download(`https://localhost:${portOf(https)}/x`))).toBe(digest(body));
  expect(heads.map((h) => h.split(' ')[1])).toEqual([`127.0.0.1:${portOf(http)}`, `localhost:${portOf(https)}`]);
});

test('NO_PROXY: a matching host is fetched directly, the proxy sees nothing', async () => {
  process.env.NO_PROXY = '127.0.0.1';
  expect(digest(await download(`http://127.0.0.1:${portOf(http)}/x`))).toBe(digest(body));
  expect(heads).toEqual([]);
});

test.each([
  [403, /the proxy 127\.0\.0\.1:\d+ refused to connect to 127\.0\.0\.1:\d+: 403 No; check HTTPS_PROXY/],
  [407, /refused to connect .*: 407 No \(it wants credentials: put them in the proxy URL/],
])('a proxy answering CONNECT with %i: exit 6 and a message that says so', async (status, message) => {
  refuseWith = status;
  const error = await httpDownload(`http://127.0.0.1:${portOf(http)}/x`, {}).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DcxError);
  expect((error as DcxError).exitCode).toBe(ExitCode.ServerUnreachable);
  expect((error as DcxError).message).toMatch(message);
});
