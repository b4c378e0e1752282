import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { ROOT } from '../../support/server-process.js';

/** HOSTILE_LONG=1: the volumes issue 19 names (100,000 frames, 1,000 bundles, …); otherwise the short form CI runs. */
export const LONG = process.env.HOSTILE_LONG === '1';

/** `short` in the CI form, `long` with HOSTILE_LONG=1. */
export const scale = (short: number, long: number): number => (LONG ? long : short);

/**
 * The figures of one part of the suite: printed when it ends and written to
 * test/artifacts/hostile-<part>.json (README's "What we test" quotes the long run's).
 */
export class Figures {
  private readonly values: Record<string, unknown> = {};
  private readonly started = Date.now();

  constructor(private readonly part: string) {}

  set(name: string, value: unknown): void {
    this.values[name] = value;
  }

  add(name: string, by = 1): void {
    this.values[name] = ((this.values[name] as number | undefined) ?? 0) + by;
  }

  /** Counts one occurrence of `key` in the tally `name` (e.g. answers by status). */
  tally(name: string, key: string, by = 1): void {
    const tally = (this.values[name] ??= {}) as Record<string, number>;
    tally[key] = (tally[key] ?? 0) + by;
  }

  get(name: string): unknown {
    return this.values[name];
  }

  write(): void {
    const report = {
      part: this.part,
      form: LONG ? 'long' : 'short',
      seconds: Math.round((Date.now() - this.started) / 100) / 10,
      ...this.values,
    };
    const dir = join(ROOT, 'test', 'artifacts');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `hostile-${this.part}.json`), JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(`\nhostile figures (${this.part}): ${JSON.stringify(report)}\n`);
  }
}

/** Resident set of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Whether a process is still there (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A small deterministic PRNG (mulberry32), so a failing mutation can be replayed from its seed. */
export function prng(seed: number): { int: (n: number) => number; pick: <T>(items: readonly T[]) => T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { int: (n) => Math.floor(next() * n), pick: (items) => items[Math.floor(next() * items.length)] };
}

/** The seed of this run: HOSTILE_SEED, or a fresh one (printed with the figures). */
export const SEED = process.env.HOSTILE_SEED ? Number(process.env.HOSTILE_SEED) : randomBytes(4).readUInt32BE(0);

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTP request on its own connection; any headers, any body. */
export function rawHttp(url: string, method = 'GET', headers: Record<string, string> = {}, body?: Buffer | string): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A multipart upload body with field `file` named `name` (the name is written as given: tests build hostile ones). */
export function multipart(name: string, bytes: Buffer, access?: 'public' | 'token'): { body: Buffer; contentType: string } {
  const boundary = `dcx-${randomBytes(8).toString('hex')}`;
  const field = access ? `--${boundary}\r\nContent-Disposition: form-data; name="access"\r\n\r\n${access}\r\n` : '';
  const head =
    `${field}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  return {
    body: Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Uploads a content as the admin; its id (and access token for token contents). */
export async function upload(
  server: { url: string; adminToken: string },
  name: string,
  bytes: Buffer,
  access: 'public' | 'token' = 'public',
): Promise<{ id: string; accessToken?: string; sha256: string }> {
  const { body, contentType } = multipart(name, bytes, access);
  const res = await rawHttp(
    `${server.url}/api/contents`,
    'POST',
    { authorization: `Bearer ${server.adminToken}`, 'content-type': contentType },
    body,
  );
  if (res.status !== 201) throw new Error(`upload of ${name}: ${res.status} ${res.body.toString()}`);
  return JSON.parse(res.body.toString()) as { id: string; accessToken?: string; sha256: string };
}

/** Fetches a new delivery's bundle; its bytes and delivery id. */
export async function fetchBundle(
  url: string,
  contentId: string,
  headers: Record<string, string> = {},
): Promise<{ bytes: Buffer; deliveryId: string }> {
  const res = await rawHttp(`${url}/api/contents/${contentId}/bundle`, 'GET', headers);
  if (res.status !== 200) throw new Error(`bundle of ${contentId}: ${res.status} ${res.body.toString()}`);
  return { bytes: res.body, deliveryId: String(res.headers['dcx-delivery-id']) };
}

/** The plug-in data record of a bundle the server wrote (its first entry, sizes in the local header). */
export function pluginRecordOf(bundle: Buffer): Buffer {
  const size = bundle.readUInt32LE(18);
  const start = 30 + bundle.readUInt16LE(26) + bundle.readUInt16LE(28);
  return bundle.subarray(start, start + size);
}

/** SQL against the server's PostgreSQL database. */
export async function sql<T = Record<string, unknown>>(databaseUrl: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Runs `work` over `items` with at most `width` at a time. */
export async function inParallel<T, R>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i], i);
      }
    }),
  );
  return results;
}
