// httpDownload against real servers: node:http and node:https (a throwaway self-signed certificate
// made with openssl), and a raw TCP server for what node:http will not send.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import { DcxError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { ChunkedDecoder, DownloadResponse, httpDownload } from './connection.js';
import { localhostCertificate } from '../testing/certificates.js';
import { removeTempDirs, sha256 } from '../testing/temp-dirs.js';

const body = randomBytes(5 * 1024 * 1024 + 17);
let http: Server;
let https: Server;
let raw: TcpServer;
let base: string;
let secureBase: string;
let rawBase: string;
let ca: Buffer;
/** What the raw server answers to the next connection (then it closes). */
let rawAnswer: Buffer[] = [];
const seen: IncomingMessage['headers'][] = [];

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  seen.push(req.headers);
  const url = new URL(req.url!, 'http://x');
  switch (url.pathname) {
    case '/body':
      res.writeHead(200, { 'content-length': body.length, 'set-cookie': ['a=1', 'b=2'] });
      return void res.end(body);
    case '/trickle': {
      // Many small writes with pauses: the client sees the body in odd pieces.
      res.writeHead(200, { 'content-length': body.length });
      for (let at = 0; at < body.length;) {
        const n = Math.min(body.length - at, 1 + ((at * 7919) % 300_000));
        if (!res.write(body.subarray(at, at + n))) await new Promise((resolve) => res.once('drain', resolve));
        at += n;
        if (at % 5 === 0) await pause(1);
      }
      return void res.end();
    }
    case '/chunked':
      // No Content-Length: node:http sends it chunked, with a trailer.
      res.writeHead(200, { trailer: 'x-check' });
      for (let at = 0; at < body.length; at += 100_003) res.write(body.subarray(at, at + 100_003));
      res.addTrailers({ 'x-check': 'yes' });
      return void res.end();
    case '/hints':
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(200, { 'content-length': 5 });
      return void res.end('hello');
    case '/cut':
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 1_000_000), () => setTimeout(() => res.destroy(), 50));
      return;
    case '/missing':
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ statusCode: 404, message: 'no such content' }));
    case '/redirect':
      res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/body' });
      return void res.end();
    case '/loop':
      res.writeHead(302, { location: '/loop' });
      return void res.end();
    case '/empty':
      res.writeHead(204);
      return void res.end();
    default:
      res.writeHead(500).end();
  }
}

beforeAll(async () => {
  const certificate = await localhostCertificate();
  ca = certificate.cert;
  const key = certificate.key;
  http = createHttpServer((req, res) => void handle(req, res));
  https = createHttpsServer({ key, cert: ca }, (req, res) => void handle(req, res));
  raw = createTcpServer((socket: Socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      const answer = rawAnswer;
      rawAnswer = [];
      void (async () => {
        for (const piece of answer) {
          socket.write(piece);
          await pause(5);
        }
        socket.end();
      })();
    });
  });
  for (const server of [http, https, raw]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  secureBase = `https://localhost:${(https.address() as AddressInfo).port}`;
  rawBase = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const server of [http, https]) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  await new Promise((resolve) => raw.close(resolve));
  await removeTempDirs();
});

/** The whole body, copying each chunk (the read buffer is reused); `slow`: a sink that makes reading wait. */
async function collect(response: DownloadResponse, slow = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await response.read((chunk) => {
    chunks.push(Buffer.from(chunk));
    if (slow) return pause(1);
  });
  return Buffer.concat(chunks);
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

describe('httpDownload', () => {
  test('a body with Content-Length, as sent; the request says what it asks for and closes', async () => {
    const response = await httpDownload(`${base}/body?x=1`, { accept: 'application/zip', 'dcx-access-token': 'tok' });
    expect([response.status, response.statusText, response.ok, response.url]).toEqual([200, 'OK', true, `${base}/body?x=1`]);
    expect(response.headers.get('content-length')).toBe(String(body.length));
    expect(response.headers.get('set-cookie')).toBe('a=1, b=2');
    expect(sha256(await collect(response))).toBe(sha256(body));
    expect(seen.at(-1)).toMatchObject({
      accept: 'application/zip',
      'dcx-access-token': 'tok',
      connection: 'close',
      host: base.slice('http://'.length),
    });
  });

  test('odd pieces, a sink that makes reading wait, chunked encoding with a trailer: the same bytes', async () => {
    expect(sha256(await collect(await httpDownload(`${base}/trickle`, {}), true))).toBe(sha256(body));
    expect(sha256(await collect(await httpDownload(`${base}/chunked`, {})))).toBe(sha256(body));
    expect(sha256(await collect(await httpDownload(`${base}/chunked`, {}), true))).toBe(sha256(body));
  });

  test('https, through the same code (a private CA here)', async () => {
    const response = await httpDownload(`${secureBase}/trickle`, {}, { tls: { ca } });
    expect(response.status).toBe(200);
    expect(sha256(await collect(response, true))).toBe(sha256(body));
    const untrusted = await failure(httpDownload(`${secureBase}/body`, {}));
    expect((untrusted as DcxError).exitCode).toBe(ExitCode.ServerUnreachable);
    expect((untrusted as DcxError).message).toMatch(/^cannot reach https:\/\/localhost:\d+: .*certificate/);
  });

  test('redirects are followed (relative, 303, 307) to the URL that answers; a loop stops after 20', async () => {
    const followed = await httpDownload(`${base}/redirect?status=307&to=${encodeURIComponent('/redirect?status=303&to=/body')}`, {});
    expect([followed.status, followed.url]).toEqual([200, `${base}/body`]);
    expect(sha256(await collect(followed))).toBe(sha256(body));
    const loop = await httpDownload(`${base}/loop`, {});
    expect(loop.status).toBe(302);
    loop.cancel();
  });

  test('interim 1xx answers are passed over; an empty answer reads as empty', async () => {
    const hinted = await httpDownload(`${base}/hints`, {});
    expect(hinted.status).toBe(200);
    expect((await collect(hinted)).toString()).toBe('hello');
    const empty = await httpDownload(`${base}/empty`, {});
    expect(empty.status).toBe(204);
    expect((await collect(empty)).length).toBe(0);
  });

  test('an error answer: its text, for the message', async () => {
    const response = await httpDownload(`${base}/missing`, {});
    expect([response.status, response.statusText, response.ok]).toEqual([404, 'Not Found', false]);
    expect(JSON.parse(await response.text())).toEqual({ statusCode: 404, message: 'no such content' });
  });

  test('a connection cut before the end of the body: what came is delivered, then read fails', async () => {
    const response = await httpDownload(`${base}/cut`, {});
    const chunks: Buffer[] = [];
    const error = await failure(response.read((chunk) => void chunks.push(Buffer.from(chunk))));
    expect(String(error)).toMatch(/closed before the end of the body|ECONNRESET/);
    expect(Buffer.concat(chunks).equals(body.subarray(0, 1_000_000))).toBe(true);
  });

  test("a sink's failure is read's failure", async () => {
    const response = await httpDownload(`${base}/body`, {});
    const disk = new Error('ENOSPC: no space left on device');
    let calls = 0;
    expect(await failure(response.read(() => (++calls === 3 ? Promise.reject(disk) : undefined)))).toBe(disk);
    const other = await httpDownload(`${base}/body`, {});
    expect(
      await failure(
        other.read(() => {
          throw disk;
        }),
      ),
    ).toBe(disk);
  });

  test('a body delimited by the end of the connection; a head split anywhere; no answer at all', async () => {
    rawAnswer = [Buffer.from('HTTP/1.0 200 OK\r\nContent-Ty'), Buffer.from('pe: text/plain\r\n\r\nfirst '), Buffer.from('and last')];
    const response = await httpDownload(`${rawBase}/x`, {});
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'text/plain']);
    expect((await collect(response)).toString()).toBe('first and last');

    rawAnswer = [];
    const error = await failure(httpDownload(`${rawBase}/x`, {}));
    expect((error as DcxError).exitCode).toBe(ExitCode.ServerUnreachable);
    expect((error as DcxError).message).toMatch(/without answering/);

    rawAnswer = [Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')];
    expect(((await failure(httpDownload(`${rawBase}/x`, {}))) as DcxError).message).toMatch(/not an HTTP\/1\.1 response/);
  });

  test('a refused connection is exit 6 naming the origin; a line break in a header is a usage error', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createTcpServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const error = (await failure(httpDownload(`http://127.0.0.1:${closed}/x`, {}))) as DcxError;
    expect([error.exitCode, error.message]).toEqual([
      ExitCode.ServerUnreachable,
      `cannot reach http://127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}`,
    ]);
    const usage = (await failure(httpDownload(`${base}/body`, { 'dcx-access-token': 'a\r\nx-evil: 1' }))) as DcxError;
    expect(usage.exitCode).toBe(ExitCode.Usage);
  });
});

describe('ChunkedDecoder', () => {
  const encoded = Buffer.from('5;ext=1\r\nhello\r\n7\r\n, world\r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n');

  test('the data, whatever the pieces it comes in', () => {
    for (let at = 0; at <= encoded.length; at++) {
      for (const size of [1, 3, 1000]) {
        const decoder = new ChunkedDecoder();
        const out: Buffer[] = [];
        const pieces = [
          encoded.subarray(0, at),
          ...Array.from({ length: Math.ceil((encoded.length - at) / size) }, (_, i) =>
            encoded.subarray(at + i * size, at + (i + 1) * size),
          ),
        ];
        for (const piece of pieces) out.push(...decoder.write(piece));
        expect([Buffer.concat(out).toString(), decoder.done]).toEqual(['hello, world0123456789', true]);
      }
    }
  });

  test('malformed sizes and missing CRLFs are errors', () => {
    expect(() => new ChunkedDecoder().write(Buffer.from('zz\r\n'))).toThrow(/malformed chunk size/);
    expect(() => new ChunkedDecoder().write(Buffer.from('2\r\nabX\r\n'))).toThrow(/no CRLF/);
  });
});
