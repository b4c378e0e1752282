import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';
import type { AppConfig } from '../config/app-config.js';
import { ContentStorage, READ_HIGH_WATER_MARK } from '../contents/content-storage.js';
import type { Content } from '../contents/content.entity.js';
import { BundleWriter, ConnectionClosedError } from './bundle-writer.js';

/** Larger than one read: streamed from disk through the writer's read buffers. */
const CONTENT_SIZE = 3 * READ_HIGH_WATER_MARK + 12_345;

interface Received {
  bytes: Buffer;
  /** The memory the large chunks were handed over in (the writer's read buffers). */
  readMemory: Set<ArrayBufferLike>;
}

/**
 * A destination that takes the bytes of a chunk on a later turn and then calls back, as a socket does once
 * the kernel has them: a buffer reused before that would show in what it received. After `failAfter` chunks
 * it is destroyed instead (the client went away). `hold` keeps the last chunk of content (the short one of
 * a read buffer) unsent until it resolves.
 */
function sink(options: { failAfter?: number; hold?: Promise<void>; held?: () => void } = {}): { out: Writable; received: Received } {
  const { failAfter = Infinity, hold, held } = options;
  const chunks: Buffer[] = [];
  const received: Received = { bytes: Buffer.alloc(0), readMemory: new Set() };
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      // Larger than Buffer's pool (8 KiB on Node 20, 64 KiB on Node 24): never the pool small headers are cut from.
      const readBuffer = chunk.buffer.byteLength > Math.max(Buffer.poolSize, 64 * 1024);
      if (readBuffer) received.readMemory.add(chunk.buffer);
      if (chunks.length >= failAfter) return void out.destroy();
      const take = () =>
        setImmediate(() => {
          chunks.push(Buffer.from(chunk));
          callback();
        });
      if (hold && readBuffer && chunk.length < READ_HIGH_WATER_MARK) {
        held?.();
        void hold.then(take);
      } else take();
    },
    final(callback) {
      received.bytes = Buffer.concat(chunks);
      callback();
    },
  });
  return { out, received };
}

describe('BundleWriter: large contents streamed through read buffers', () => {
  let dir: string;
  let storage: ContentStorage;
  let writer: BundleWriter;
  const contents: { content: Content; bytes: Buffer }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcx-bundle-writer-'));
    storage = new ContentStorage({ contentsDir: join(dir, 'contents'), tmpDir: join(dir, 'tmp') } as AppConfig);
    await storage.ensureDirectories();
    for (const name of ['a.bin', 'b.bin']) {
      const bytes = randomBytes(CONTENT_SIZE);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const temp = join(storage.tmpDir, `upload-${name}`);
      await writeFile(temp, bytes);
      const storageKey = await storage.commit(temp, sha256);
      const content = {
        id: randomUUID(),
        name,
        mediaType: 'application/octet-stream',
        size: bytes.length,
        sha256,
        crc32: crc32(bytes),
        storageKey,
        createdAt: new Date(),
      } as Content;
      contents.push({ content, bytes });
    }
  });

  beforeEach(() => {
    writer = new BundleWriter(storage);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes the whole bundle of content `i`; checks its length and that the content sits where its header says. */
  async function writeWhole(i: number, options?: Parameters<typeof sink>[0]): Promise<Received> {
    const { content, bytes } = contents[i];
    const layout = writer.layout(randomBytes(300), content);
    const { out, received } = sink(options);
    await writer.write(layout, 0, layout.size - 1, out, () => undefined);
    expect(received.bytes.length).toBe(layout.size);
    const data = layout.segments.find((segment) => segment.kind === 'source' && segment.source === content)!;
    expect(received.bytes.subarray(data.offset, data.offset + bytes.length).equals(bytes)).toBe(true);
    return received;
  }

  test("a finished bundle's read buffers serve the next one, which still gets its own bytes", async () => {
    const first = await writeWhole(0);
    const second = await writeWhole(1);
    expect(first.readMemory.size).toBe(2); // two buffers in turn
    expect([...second.readMemory].every((memory) => first.readMemory.has(memory))).toBe(true);
    const again = await writeWhole(0);
    expect([...again.readMemory].every((memory) => first.readMemory.has(memory))).toBe(true);
  });

  test('bundles written at the same time never share a read buffer', async () => {
    await writeWhole(0); // buffers to hand on
    const [a, b] = await Promise.all([writeWhole(0), writeWhole(1)]);
    expect([...a.readMemory].some((memory) => b.readMemory.has(memory))).toBe(false);
  });

  test('a read buffer is handed on only once its last write called back', async () => {
    await writeWhole(0); // buffers to hand on
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    const first = writeWhole(0, { hold, held }); // checks its bytes once it has them all
    await holding;
    await writeWhole(1); // while the first bundle's last chunk is still on its way
    release();
    await first;
  });

  test('the buffers of a bundle whose destination went away are not handed on', async () => {
    const { content } = contents[0];
    const layout = writer.layout(randomBytes(300), content);
    const { out, received } = sink({ failAfter: 4 }); // the headers and the plug-in data, one chunk of content; gone at the next
    await expect(writer.write(layout, 0, layout.size - 1, out, () => undefined)).rejects.toBeInstanceOf(ConnectionClosedError);
    const next = await writeWhole(1);
    expect(received.readMemory.size).toBe(2);
    expect([...next.readMemory].some((memory) => received.readMemory.has(memory))).toBe(false);
  });
});
