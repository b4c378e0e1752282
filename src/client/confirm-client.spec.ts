import { createServer, Server, Socket } from 'node:net';
import { exchange } from './confirm-client.js';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';

const HTTP_ANSWER = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');

/** A real TCP server on a free loopback port that answers whatever it gets with `respond`. */
async function listening(respond: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.once('data', () => respond(socket)));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, port: (server.address() as { port: number }).port };
}

describe('exchange with something that is not a confirmation port', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

  it.each([
    ['in one segment', (socket: Socket) => socket.end(HTTP_ANSWER)],
    [
      'a byte at a time',
      (socket: Socket) => {
        let i = 0;
        const next = () => (i < HTTP_ANSWER.length ? socket.write(HTTP_ANSWER.subarray(i, ++i), next) : socket.end());
        next();
      },
    ],
  ])('an HTTP server answering %s is named as such, not as a frame of 1,213,486,160 bytes', async (_how, respond) => {
    const started = await listening(respond);
    server = started.server;
    const failure = await exchange({ host: '127.0.0.1', port: started.port }, Buffer.from([0, 0, 0, 8, 1, 1, 0, 0])).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(DcxError);
    expect((failure as DcxError).exitCode).toBe(ExitCode.ServerUnreachable);
    expect((failure as DcxError).message).toBe(
      `127.0.0.1:${started.port} is not a DCX confirmation port (it answered HTTP): check the confirmation host and port`,
    );
  });

  it('other bytes are still a malformed answer', async () => {
    const started = await listening((socket) => socket.end(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2])));
    server = started.server;
    const failure = await exchange({ host: '127.0.0.1', port: started.port }, Buffer.from([0, 0, 0, 8, 1, 1, 0, 0])).catch(
      (e: unknown) => e,
    );
    expect((failure as DcxError).exitCode).toBe(ExitCode.Failure);
    expect((failure as DcxError).message).toMatch(/sent a malformed answer: frame of 4294967295 bytes exceeds the limit/);
  });
});
