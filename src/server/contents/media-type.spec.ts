import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseMediaType, MediaTypeDetector } from './media-type.js';

describe('chooseMediaType', () => {
  it.each([
    ['application/pdf', 'report.bin', 'application/octet-stream', 'application/pdf'],
    ['image/png', 'photo.jpg', 'image/jpeg', 'image/png'],
    [undefined, 'notes.md', 'application/octet-stream', 'text/markdown'],
    [undefined, 'data.csv', undefined, 'text/csv'],
    [undefined, 'README', 'text/plain', 'text/plain'],
    [undefined, 'blob', undefined, 'application/octet-stream'],
    [undefined, 'blob', 'not a type', 'application/octet-stream'],
  ])('bytes say %s, name %s, declared %s: %s', (sniffed, name, declared, expected) => {
    expect(chooseMediaType(sniffed, name, declared)).toBe(expected);
  });
});

describe('MediaTypeDetector', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'dcx-media-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function detect(bytes: Buffer, name: string, declared?: string): Promise<string> {
    const path = join(dir, `upload-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, bytes);
    return new MediaTypeDetector().detect(path, name, declared);
  }

  it('knows a PDF by its signature, whatever its name or declared type', async () => {
    const pdf = Buffer.from('%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n');
    expect(await detect(pdf, 'policy.pdf', 'application/octet-stream')).toBe('application/pdf');
    expect(await detect(pdf, 'policy', undefined)).toBe('application/pdf');
  });

  it('knows a PNG by its signature', async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex');
    expect(await detect(png, 'image.dat', 'application/octet-stream')).toBe('image/png');
  });

  it('falls back to the name for text, and to octet-stream for unknown bytes without a telling name', async () => {
    expect(await detect(Buffer.from('# Policy\n'), 'policy.md', 'application/octet-stream')).toBe('text/markdown');
    expect(await detect(Buffer.from([1, 2, 3, 4, 5]), 'blob', 'application/octet-stream')).toBe('application/octet-stream');
    expect(await detect(Buffer.alloc(0), 'empty.txt')).toBe('text/plain');
  });
});
