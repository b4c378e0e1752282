import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { parseServerKeySet, ServerKeySet } from '../../src/protocol/keys.js';
import { openPluginData, PluginData, sealPluginData } from '../../src/protocol/plugin-data.js';
import { renderLayout } from '../../src/protocol/testing/zip-bytes.js';
import { bufferEntry, layoutZip } from '../../src/protocol/zip-layout.js';
import { SERVER_KEY_FILE_NAME } from '../../src/server/keys/server-keys.service.js';
import { dcx, newClientHome } from '../support/cli-process.js';
import { ROOT, RunningServer, startServer } from '../support/server-process.js';
import { fetchBundle, Figures, inParallel, pluginRecordOf, prng, scale, SEED, sql, upload } from './support/hostile.js';

const MARK = `HOSTILE-${SEED}`;
const NAME = 'clip.bin';

/** Entry names built to escape --out or to deceive. */
const HOSTILE_NAMES = [
  `../${MARK}-up`,
  `../../${MARK}-up2`,
  `/tmp/${MARK}-abs`,
  `..\\${MARK}-bs`,
  `\\tmp\\${MARK}-bs-abs`,
  `C:\\${MARK}-drive`,
  `C:${MARK}-drive-relative`,
  `out/../../${MARK}-in-out`,
  `${MARK}\u0000.txt`,
  `${NAME}\u0000../../${MARK}`,
  'x'.repeat(10_000),
  `${'é'.repeat(600)}.bin`,
  `．．／${MARK}-fullwidth`,
  `..\u2215${MARK}-division-slash`,
  `\u2025/${MARK}-two-dot-leader`,
  `clip\u202Enib.exe`,
  'CON',
  'nul.txt',
  '.',
  '..',
  '',
  ' ',
  `${NAME}.`,
  `${NAME}\u0007`,
  `line\nbreak`,
  'clip\u0301.bin',
];

interface Mutation {
  kind: string;
  bytes: Buffer;
}

/** Offsets of the server's two-entry bundle: plug-in data, then the content (sizes in the local headers). */
function layoutOf(bundle: Buffer) {
  const end = bundle.length - 22;
  const cdOffset = bundle.readUInt32LE(end + 16);
  const pluginSize = bundle.readUInt32LE(18);
  const lh2 = 30 + bundle.readUInt16LE(26) + bundle.readUInt16LE(28) + pluginSize;
  const data2 = lh2 + 30 + bundle.readUInt16LE(lh2 + 26) + bundle.readUInt16LE(lh2 + 28);
  const cd2 = cdOffset + 46 + bundle.readUInt16LE(cdOffset + 28) + bundle.readUInt16LE(cdOffset + 30) + bundle.readUInt16LE(cdOffset + 32);
  return { end, cdOffset, lh2, data2, cd2, pluginStart: 30 + bundle.readUInt16LE(26) + bundle.readUInt16LE(28), pluginSize };
}

/** A ZIP of `entries` laid out as the server writes them. */
const zipOf = (entries: { name: string; bytes: Buffer }[]) =>
  renderLayout(
    layoutZip(
      entries.map((e) => bufferEntry(e.name, e.bytes)),
      new Date('2026-01-01T00:00:00Z'),
    ),
  );

/** The mutations of one real bundle. `resign` seals plug-in data (same delivery and secret) as the server's own key would. */
function mutations(
  random: ReturnType<typeof prng>,
  bundle: Buffer,
  content: Buffer,
  resign: (change: (data: PluginData) => void) => Buffer,
): (() => Mutation)[] {
  const at = layoutOf(bundle);
  const record = bundle.subarray(at.pluginStart, at.pluginStart + at.pluginSize);
  const regions: Record<string, [number, number]> = {
    'local header (plug-in data)': [0, at.pluginStart],
    'plug-in data': [at.pluginStart, at.lh2],
    'local header (content)': [at.lh2, at.data2],
    content: [at.data2, at.cdOffset],
    'central directory': [at.cdOffset, at.end],
    'end record': [at.end, bundle.length],
  };
  const flip = (name: string): Mutation => {
    const [from, to] = regions[name];
    const bytes = Buffer.from(bundle);
    const flips = 1 + random.int(3);
    for (let i = 0; i < flips; i++) bytes[from + random.int(to - from)] ^= 1 << random.int(8);
    return { kind: `bit flips: ${name}`, bytes };
  };
  const patch = (kind: string, edit: (bytes: Buffer) => void): Mutation => {
    const bytes = Buffer.from(bundle);
    edit(bytes);
    return { kind, bytes };
  };
  const name = random.pick(HOSTILE_NAMES);
  const tb = 2 ** 40;
  const all: (() => Mutation)[] = [
    ...Object.keys(regions).map((region) => () => flip(region)),
    () => ({ kind: 'truncation', bytes: bundle.subarray(0, random.int(bundle.length)) }),
    () => ({ kind: 'truncation in the central directory', bytes: bundle.subarray(0, at.cdOffset + random.int(at.end - at.cdOffset)) }),
    () => ({
      kind: 'hostile name (ZIP only)',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name, bytes: content },
      ]),
    }),
    () => {
      let listed = name;
      while (Buffer.byteLength(listed) > 1024) listed = listed.slice(0, -1);
      const signed = resign((data) => (data.files[0].name = listed));
      return {
        kind: 'hostile name (signed plug-in data lists it)',
        bytes: zipOf([
          { name: 'dcx-plugin-data.bin', bytes: signed },
          { name: listed, bytes: content },
        ]),
      };
    },
    () => ({
      kind: 'duplicate entries',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: NAME, bytes: content },
        { name: NAME, bytes: randomBytes(content.length) },
      ]),
    }),
    () => ({
      kind: 'duplicate plug-in data',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: NAME, bytes: content },
      ]),
    }),
    () => ({
      kind: 'look-alike duplicate (NFD)',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: NAME, bytes: content },
        { name: 'clip\u0301.bin'.normalize('NFD'), bytes: content },
      ]),
    }),
    () =>
      patch('terabyte sizes (central directory)', (bytes) => {
        bytes.writeUInt32LE(0xfffffffe, at.cd2 + 20);
        bytes.writeUInt32LE(0xfffffffe, at.cd2 + 24);
      }),
    () =>
      patch('terabyte sizes (local header and central directory)', (bytes) => {
        for (const off of [at.lh2 + 18, at.lh2 + 22, at.cd2 + 20, at.cd2 + 24]) bytes.writeUInt32LE(0xfffffffe, off);
      }),
    () => {
      const big = { name: NAME, size: tb, crc32: zlibCrc32(content), source: content };
      const layout = layoutZip([bufferEntry('dcx-plugin-data.bin', record), big], new Date('2026-01-01T00:00:00Z'));
      return { kind: 'terabyte sizes (ZIP64)', bytes: renderLayout(layout, 0, Math.min(layout.size - 1, 4 * 1024 * 1024)) };
    },
    () => {
      const signed = resign((data) => (data.files[0].size = tb));
      return {
        kind: 'terabyte size (signed plug-in data)',
        bytes: zipOf([
          { name: 'dcx-plugin-data.bin', bytes: signed },
          { name: NAME, bytes: content },
        ]),
      };
    },
    () => patch('symlink attributes', (bytes) => bytes.writeUInt32LE((0o120777 << 16) >>> 0, at.cd2 + 38)),
    () => patch('directory attributes', (bytes) => bytes.writeUInt32LE(((0o040755 << 16) | 0x10) >>> 0, at.cd2 + 38)),
    () =>
      patch('compression method deflate', (bytes) => {
        bytes.writeUInt16LE(8, at.lh2 + 8);
        bytes.writeUInt16LE(8, at.cd2 + 10);
      }),
    () => patch('encrypted flag', (bytes) => bytes.writeUInt16LE(bytes.readUInt16LE(at.cd2 + 8) | 1, at.cd2 + 8)),
    () => patch('data descriptor flag', (bytes) => bytes.writeUInt16LE(bytes.readUInt16LE(at.lh2 + 6) | 8, at.lh2 + 6)),
    () => patch('local header offset past the end', (bytes) => bytes.writeUInt32LE(0xfffffff0, at.cd2 + 42)),
    () => patch('central directory offset wrong', (bytes) => bytes.writeUInt32LE(random.int(bundle.length), at.end + 16)),
    () => patch('entry count 65535', (bytes) => (bytes.writeUInt16LE(0xffff, at.end + 8), bytes.writeUInt16LE(0xffff, at.end + 10))),
    () =>
      patch(
        'CRC-32 wrong',
        (bytes) => (bytes.writeUInt32LE(random.int(2 ** 32), at.lh2 + 14), bytes.writeUInt32LE(random.int(2 ** 32), at.cd2 + 16)),
      ),
    () => ({
      kind: 'content swapped',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: NAME, bytes: randomBytes(content.length) },
      ]),
    }),
    () => ({ kind: 'plug-in data missing', bytes: zipOf([{ name: NAME, bytes: content }]) }),
    () => ({
      kind: 'extra entry',
      bytes: zipOf([
        { name: 'dcx-plugin-data.bin', bytes: record },
        { name: NAME, bytes: content },
        { name: 'run.sh', bytes: Buffer.from('#!/bin/sh\n') },
      ]),
    }),
  ];
  return all;
}

interface Run {
  kind: string;
  deliveryId: string;
  code: number | null;
  stderr: string;
  outFiles: string[];
  strays: string[];
}

/** `dcx open` as a process in its own sandbox (cwd), so that any relative escape lands where we look. */
function open(home: string, sandbox: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist/src/client/main.js'), 'open', 'in.dcx', '--out', 'out'], {
      cwd: sandbox,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DCX_HOME: home },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

async function walk(dir: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    found.push(entry.isDirectory() ? `${path}/` : path);
    if (entry.isDirectory()) found.push(...(await walk(join(dir, entry.name), path)));
  }
  return found;
}

/**
 * Mutations of real bundles through the real `dcx open`: exit codes as README's table says, one line on
 * stderr and no stack trace, nothing written outside --out, no partial file, and a delivery confirmed
 * exactly when `dcx open` exited 0 with the original bytes saved.
 */
describe('hostile: mutated bundles through dcx open (postgres)', () => {
  let server: RunningServer;
  let keys: ServerKeySet;
  const figures = new Figures('bundles');
  const content = randomBytes(64 * 1024);
  let contentId: string;
  let work: string;

  beforeAll(async () => {
    server = await startServer('postgres', { LOG_LEVEL: 'warn' });
    keys = parseServerKeySet(await readFile(join(server.dataDir, 'keys', SERVER_KEY_FILE_NAME), 'utf8'));
    ({ id: contentId } = await upload(server, NAME, content));
    work = await mkdtemp(join(tmpdir(), 'dcx-hostile-bundles-'));
  });

  afterAll(async () => {
    figures.set('seed', SEED);
    figures.write();
    await rm(work, { recursive: true, force: true });
    await server?.stop();
  });

  test('every mutation: exit 0 (bytes intact), 3 or 4; one line, no stack; nothing outside --out, no partial file; confirmed only on exit 0', async () => {
    const random = prng(SEED);
    const total = scale(48, 1000);
    const width = 4;
    const homes = await Promise.all(Array.from({ length: width }, () => newClientHome()));
    for (const home of homes) expect((await dcx(['trust', server.url], { DCX_HOME: home })).code).toBe(0);

    // Each mutation gets a delivery of its own, so that a confirmation it caused is its own.
    const job = async (kind?: number): Promise<{ deliveryId: string; mutation: Mutation }> => {
      const { bytes, deliveryId } = await fetchBundle(server.url, contentId);
      const record = pluginRecordOf(bytes);
      const resign = (change: (data: PluginData) => void) => {
        const { data } = openPluginData(record, {});
        change(data);
        return sealPluginData(data, keys, null);
      };
      const all = mutations(random, bytes, content, resign);
      return { deliveryId, mutation: all[kind ?? random.int(all.length)]() };
    };
    const kinds = mutations(random, (await fetchBundle(server.url, contentId)).bytes, content, () => Buffer.alloc(0)).length;
    // Every kind at least once, in the short form as well; then kinds at random.
    const jobs: { deliveryId: string; mutation: Mutation }[] = [];
    while (jobs.length < total) jobs.push(await job(jobs.length < kinds ? jobs.length : undefined));

    const runs = await inParallel(jobs, width, async ({ deliveryId, mutation }, i): Promise<Run> => {
      const sandbox = await mkdtemp(join(work, 'm-'));
      await writeFile(join(sandbox, 'in.dcx'), mutation.bytes);
      const { code, stderr } = await open(homes[i % width], sandbox);
      const listing = await walk(sandbox);
      const outFiles = listing.filter((p) => p.startsWith('out/') && p !== 'out/');
      const strays = listing.filter((p) => p !== 'in.dcx' && p !== 'out/' && !p.startsWith('out/'));
      for (const file of outFiles) {
        const stats = await lstat(join(sandbox, file));
        if (!stats.isFile()) strays.push(`${file} (not a regular file)`);
        else if (!(await readFile(join(sandbox, file))).equals(content)) strays.push(`${file} (not the content)`);
      }
      await rm(sandbox, { recursive: true, force: true });
      return { kind: mutation.kind, deliveryId, code, stderr, outFiles, strays };
    });

    const rows = await sql<{ id: string; status: string }>(server.databaseUrl!, `SELECT id, status FROM deliveries WHERE id = ANY($1)`, [
      runs.map((r) => r.deliveryId),
    ]);
    const statusOf = new Map(rows.map((r) => [r.id, r.status]));
    const problems: string[] = [];
    for (const run of runs) {
      figures.tally('byKind', run.kind);
      figures.tally('byExitCode', String(run.code));
      if (run.code === 0) figures.tally('savedIntactByKind', run.kind);
      const said = `${run.kind}: exit ${run.code}, ${JSON.stringify(run.stderr.slice(0, 300))}`;
      if (![0, 3, 4].includes(run.code ?? -1)) problems.push(`exit code not 0, 3 or 4 — ${said}`);
      if (run.code !== 0 && !/^dcx: [^\n]*\n$/.test(run.stderr)) problems.push(`not one "dcx:" line — ${said}`);
      if (/\n\s+at .+:\d+:\d+/.test(run.stderr)) problems.push(`stack trace — ${said}`);
      if (run.strays.length > 0) problems.push(`files outside --out or not the content: ${run.strays.join(', ')} — ${said}`);
      if (run.code !== 0 && run.outFiles.length > 0) problems.push(`left ${run.outFiles.join(', ')} in --out — ${said}`);
      if (run.code === 0 && run.outFiles.length !== 1) problems.push(`exit 0 with ${run.outFiles.length} files — ${said}`);
      const confirmed = statusOf.get(run.deliveryId) === 'confirmed';
      if (confirmed !== (run.code === 0)) problems.push(`delivery ${statusOf.get(run.deliveryId)} after exit ${run.code} — ${said}`);
    }
    const escapes = [`/tmp/${MARK}-abs`, join(tmpdir(), `${MARK}-abs`), join(work, `${MARK}-up`), join(tmpdir(), `${MARK}-up2`)].filter(
      (p) => existsSync(p),
    );
    figures.set('bundlesMutated', runs.length);
    figures.set('kinds', kinds);
    figures.set('filesOutsideOut', runs.reduce((n, r) => n + r.strays.length, 0) + escapes.length);
    figures.set('stackTraces', runs.filter((r) => /\n\s+at .+:\d+:\d+/.test(r.stderr)).length);
    figures.set('confirmedAfterExit0', runs.filter((r) => r.code === 0).length);
    figures.set('problems', problems.length);
    expect(escapes).toEqual([]);
    expect(problems).toEqual([]);
  });
});
