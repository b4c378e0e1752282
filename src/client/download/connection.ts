// The bundle download's own HTTP/1.1 client: the body is read into one reused 1 MiB buffer and handed to
// the download writer, with no allocation per chunk (fetch cannot). API calls use fetch, in ../http.ts.
import { connect as netConnect, isIP, Socket } from 'node:net';
import { connect as tlsConnect, ConnectionOptions } from 'node:tls';
import { DcxError, unreachable, usageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { networkReason, proxyFor, ResponseLike, viaProxy } from '../http.js';
import { openTunnel } from './tunnel.js';

/** Each read fills (part of) this one buffer, over and over: no allocation per chunk. */
const READ_BUFFER = 1024 * 1024;
const MAX_HEAD = 64 * 1024;
const MAX_REDIRECTS = 20;
/** A connection that receives nothing for this long fails (fetch's body timeout). */
const IDLE_TIMEOUT_MS = 300_000;
const MAX_TEXT = 1024 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/**
 * Takes every body byte, in order. `chunk` is a view of the connection's read buffer, which the next
 * read reuses: the sink is done with it when it returns, or when the promise it returns settles
 * (reading waits for that).
 */
export type BodySink = (chunk: Buffer) => void | Promise<void>;

/** A response to `httpDownload`: the head at once, the body when asked for. */
export interface DownloadResponse extends ResponseLike {
  ok: boolean;
  /** The URL that answered, after redirects. */
  url: string;
  headers: Headers;
  /**
   * Hands the body to `sink`; resolves at its end. Rejects with the sink's error when the sink fails,
   * else with the connection's (failed, timed out, or closed before the end of the body).
   */
  read(sink: BodySink): Promise<void>;
  /** Drops the connection, body unread. */
  cancel(): void;
}

/**
 * The headers of a request, or a function that gives them for the URL asked (each redirect and each
 * resumed Range request is a new request: a signed one needs a fresh signature over its own path).
 */
export type RequestHeaders = Record<string, string> | ((url: URL) => Record<string, string>);

export function headersFor(headers: RequestHeaders, url: URL): Record<string, string> {
  return typeof headers === 'function' ? headers(url) : headers;
}

export interface DownloadOptions {
  /** TLS options for https (a private CA, in tests). */
  tls?: Pick<ConnectionOptions, 'ca'>;
}

/**
 * GET for bundle downloads: HTTP/1.1 on a socket of its own (`Connection: close`), following
 * redirects. The body is read into one reused buffer and handed over as views of it: neither the
 * allocation and copy of every chunk by node:http's parser and streams, nor fetch's web streams,
 * which cost several times the CPU per byte. Connection failures are exit 6, like `httpRequest`.
 */
export async function httpDownload(url: URL | string, headers: RequestHeaders, options: DownloadOptions = {}): Promise<DownloadResponse> {
  let target = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const sent = headersFor(headers, target);
    for (const [name, value] of Object.entries(sent)) {
      if (/[\r\n\0]/.test(value)) throw usageError(`the ${name} header cannot hold a line break`);
    }
    let response: Connection;
    try {
      response = await Connection.open(target, sent, options);
    } catch (error) {
      if (error instanceof DcxError) throw error;
      throw unreachable(`cannot reach ${target.origin}${viaProxy(target)}: ${networkReason(error)}`, error);
    }
    const location = response.headers.get('location');
    if ([301, 302, 303, 307, 308].includes(response.status) && location !== null && redirects < MAX_REDIRECTS) {
      response.cancel();
      target = new URL(location, target);
      if (target.protocol !== 'http:' && target.protocol !== 'https:')
        throw new DcxError(ExitCode.Failure, `${target.origin} redirects to a ${target.protocol} URL`);
      continue;
    }
    return response;
  }
}

type Framing = { kind: 'length'; left: number } | { kind: 'chunked'; decoder: ChunkedDecoder } | { kind: 'close' };

/** One request and its response on one connection. */
class Connection implements DownloadResponse {
  status = 0;
  statusText = '';
  headers = new Headers();
  private head: Buffer[] = [];
  private headLength = 0;
  /** Body bytes that came with the head, before `read` (copied: the read buffer moves on). */
  private early: Buffer | null = null;
  private framing: Framing = { kind: 'close' };
  private sink: BodySink | null = null;
  private reading: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  private headDone: { resolve: () => void; reject: (error: unknown) => void } | null = null;
  private over = false;
  /** The sink has not finished with the bytes it was given (reading is paused meanwhile). */
  private busy = false;
  /** The connection failed, or closed before the body's end (while nobody was reading). */
  private failure: unknown = null;
  private sinkFailure: { error: unknown } | null = null;

  private constructor(
    readonly url: string,
    private readonly socket: Socket,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  static async open(url: URL, headers: Record<string, string>, options: DownloadOptions): Promise<Connection> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const request = [
      `GET ${url.pathname}${url.search} HTTP/1.1`,
      `host: ${url.host}`,
      'user-agent: dcx',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      'connection: close',
      '',
      '',
    ].join('\r\n');
    let connection: Connection | null = null;
    const proxy = proxyFor(url);
    let socket: Socket;
    if (proxy) {
      // Through a CONNECT tunnel the socket exists before this request: its bytes come as 'data' events.
      const tunnel = await openTunnel(proxy, { host, port });
      socket =
        url.protocol === 'https:'
          ? tlsConnect({ socket: tunnel, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...options.tls })
          : tunnel;
      socket.on('data', (chunk: Buffer) => connection!.onRead(chunk, chunk.length));
      socket.resume();
    } else {
      const onread = {
        buffer: Buffer.allocUnsafe(READ_BUFFER),
        callback: (n: number, buffer: Uint8Array) => connection!.onRead(buffer as Buffer, n),
      };
      socket =
        url.protocol === 'https:'
          ? // Node's tls.connect takes `onread` as net.connect does (its typings miss it).
            tlsConnect({
              host,
              port,
              servername: isIP(host) ? undefined : host,
              ALPNProtocols: ['http/1.1'],
              onread,
              ...options.tls,
            } as ConnectionOptions)
          : netConnect({ host, port, onread });
    }
    connection = new Connection(url.href, socket);
    const answered = new Promise<void>((resolve, reject) => (connection.headDone = { resolve, reject }));
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy(new Error(`nothing received for ${IDLE_TIMEOUT_MS / 1000} s`)));
    socket.on('error', (error) => connection.fail(error));
    socket.on('end', () => connection.ended());
    socket.on('close', () => connection.ended());
    socket.write(request);
    await answered;
    return connection;
  }

  read(sink: BodySink): Promise<void> {
    if (this.sink) throw new Error('the body is being read already');
    this.sink = sink;
    return new Promise<void>((resolve, reject) => {
      this.reading = { resolve, reject };
      if (this.failure !== null) return this.finish();
      const early = this.early;
      this.early = null;
      this.afterDelivery(early ? this.deliver(early) : undefined);
    });
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    let length = 0;
    try {
      await this.read((chunk) => {
        chunks.push(Buffer.from(chunk.subarray(0, MAX_TEXT - length)));
        length += chunk.length;
        if (length >= MAX_TEXT) throw new Error('enough');
      });
    } catch {
      // a body cut short or too long: what arrived is the message
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  cancel(): void {
    this.over = true;
    this.socket.destroy();
  }

  /** A read filled `n` bytes of `buffer`; false pauses reading (until the sink is done with them). */
  private onRead(buffer: Buffer, n: number): boolean {
    const bytes = buffer.subarray(0, n);
    if (this.over) return true;
    if (this.headDone) return this.onHeadBytes(bytes);
    if (!this.sink) {
      // The caller has the head but has not asked for the body yet: keep what came.
      this.early = this.early ? Buffer.concat([this.early, bytes]) : Buffer.from(bytes);
      this.socket.pause();
      return false;
    }
    const next = this.deliver(bytes);
    if (!next) return !this.over && this.failure === null;
    this.afterDelivery(next);
    return false;
  }

  /** Reading goes on once the sink is done with what it was given (`next`: it is not yet). */
  private afterDelivery(next: void | Promise<void>): void {
    if (next) {
      this.busy = true;
      this.socket.pause();
      void next.then(() => {
        this.busy = false;
        this.afterDelivery(undefined);
      });
      return;
    }
    if (this.over || this.failure !== null) return this.finish();
    this.socket.resume();
  }

  private onHeadBytes(bytes: Buffer): boolean {
    const copy = Buffer.from(bytes);
    this.head.push(copy);
    this.headLength += copy.length;
    const all = Buffer.concat(this.head, this.headLength);
    const end = all.indexOf(HEAD_END);
    if (end === -1) {
      if (this.headLength > MAX_HEAD) this.socket.destroy(new Error(`the response head is larger than ${MAX_HEAD} bytes`));
      return true;
    }
    this.head = [];
    this.headLength = 0;
    const rest = all.subarray(end + HEAD_END.length);
    try {
      this.parseHead(all.subarray(0, end).toString('latin1'));
    } catch (error) {
      this.socket.destroy(error as Error);
      return true;
    }
    // 1xx: an interim answer; the real one follows.
    if (this.status < 200) return rest.length > 0 ? this.onHeadBytes(rest) : true;
    const done = this.headDone!;
    this.headDone = null;
    this.framing = framingOf(this.status, this.headers);
    if (this.framing.kind === 'length' && this.framing.left === 0) this.over = true;
    if (rest.length > 0) this.early = rest;
    this.socket.pause();
    done.resolve();
    return false;
  }

  private parseHead(text: string): void {
    const [statusLine, ...lines] = text.split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!match) throw new Error(`not an HTTP/1.1 response (${JSON.stringify(statusLine.slice(0, 40))})`);
    this.status = Number(match[1]);
    this.statusText = match[2] ?? '';
    this.headers = new Headers();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`a malformed response header line (${JSON.stringify(line.slice(0, 40))})`);
      this.headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
  }

  /** Hands body bytes (after framing) to the sink; a promise when the sink must be waited for. */
  private deliver(bytes: Buffer): void | Promise<void> {
    const framing = this.framing;
    if (framing.kind === 'length') {
      const body = bytes.length > framing.left ? bytes.subarray(0, framing.left) : bytes;
      framing.left -= body.length;
      if (framing.left === 0) this.over = true;
      return this.toSink([body], 0);
    }
    if (framing.kind === 'close') return this.toSink([bytes], 0);
    let pieces: Buffer[];
    try {
      pieces = framing.decoder.write(bytes);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (framing.decoder.done) this.over = true;
    return this.toSink(pieces, 0);
  }

  private toSink(pieces: Buffer[], from: number): void | Promise<void> {
    for (let i = from; i < pieces.length; i++) {
      if (this.sinkFailure || pieces[i].length === 0) continue;
      let result: void | Promise<void>;
      try {
        result = this.sink!(pieces[i]);
      } catch (error) {
        this.sinkFailed(error);
        return;
      }
      if (result) {
        return result.then(
          () => this.toSink(pieces, i + 1),
          (error: unknown) => this.sinkFailed(error),
        );
      }
    }
    if (this.over) this.finish();
  }

  private sinkFailed(error: unknown): void {
    this.sinkFailure ??= { error };
    this.over = true;
    this.socket.destroy();
    this.finish();
  }

  private fail(error: unknown): void {
    if (this.over) return;
    this.failure ??= error;
    if (this.headDone) {
      this.headDone.reject(error);
      this.headDone = null;
    }
    this.socket.destroy();
    this.finish();
  }

  /** The peer ended the connection: the end of a body delimited by it, else a failure. */
  private ended(): void {
    if (this.over) return this.finish();
    if (!this.headDone && this.framing.kind === 'close' && this.failure === null) {
      this.over = true;
      // Bytes that came with the head wait for `read`, which finishes after them.
      if (this.early === null) this.finish();
      return;
    }
    this.fail(
      new Error(
        this.headDone ? 'the server closed the connection without answering' : 'the connection was closed before the end of the body',
      ),
    );
  }

  /** Settles `read` once the body is over or failed, and the sink done with what it was given. */
  private finish(): void {
    const reading = this.reading;
    if (!reading || this.busy) return;
    if (this.sinkFailure) {
      this.reading = null;
      return reading.reject(this.sinkFailure.error);
    }
    if (this.failure !== null) {
      this.reading = null;
      return reading.reject(this.failure);
    }
    if (this.over) {
      this.reading = null;
      this.socket.destroy();
      reading.resolve();
    }
  }
}

function framingOf(status: number, headers: Headers): Framing {
  if (status === 204 || status === 304) return { kind: 'length', left: 0 };
  const encoding = headers.get('transfer-encoding');
  if (encoding !== null && /(^|,)\s*chunked\s*$/i.test(encoding)) return { kind: 'chunked', decoder: new ChunkedDecoder() };
  const length = headers.get('content-length');
  if (length !== null && /^\d+$/.test(length.trim()) && Number.isSafeInteger(Number(length)))
    return { kind: 'length', left: Number(length) };
  return { kind: 'close' };
}

/** `Transfer-Encoding: chunked` (RFC 9112 §7.1): the data as views of the bytes given. */
export class ChunkedDecoder {
  done = false;
  /** Bytes of the current chunk's data still to come; -1 while reading a size or trailer line. */
  private left = -1;
  private line = '';
  /** After a chunk's data: its CRLF; after the last chunk: trailer lines until an empty one. */
  private stage: 'size' | 'data' | 'crlf' | 'trailer' = 'size';

  write(bytes: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < bytes.length && !this.done) {
      if (this.stage === 'data') {
        const n = Math.min(this.left, bytes.length - at);
        out.push(bytes.subarray(at, at + n));
        at += n;
        this.left -= n;
        if (this.left === 0) this.stage = 'crlf';
        continue;
      }
      const newline = bytes.indexOf(0x0a, at);
      const end = newline === -1 ? bytes.length : newline + 1;
      this.line += bytes.subarray(at, end).toString('latin1');
      at = end;
      if (this.line.length > 4096) throw new Error('a chunk-size or trailer line longer than 4096 bytes');
      if (newline === -1) continue;
      const line = this.line.replace(/\r?\n$/, '');
      this.line = '';
      if (this.stage === 'crlf') {
        if (line !== '') throw new Error('no CRLF after a chunk');
        this.stage = 'size';
      } else if (this.stage === 'trailer') {
        if (line === '') this.done = true;
      } else {
        const match = /^([0-9a-fA-F]{1,13})\s*(;.*)?$/.exec(line);
        if (!match) throw new Error(`a malformed chunk size ${JSON.stringify(line.slice(0, 20))}`);
        this.left = Number.parseInt(match[1], 16);
        this.stage = this.left === 0 ? 'trailer' : 'data';
      }
    }
    return out;
  }
}
