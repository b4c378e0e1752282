import busboy from 'busboy';
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import { join } from 'node:path';
import { multipartFileBody } from './multipart-body.js';
import { tempDir } from './testing/temp-dirs.js';

interface Parsed {
  fields: Record<string, string>;
  files: { field: string; name: string; bytes: Buffer }[];
}

/** Parses with busboy (the parser the server's uploads go through): an independent reader of the body. */
function parse(body: Buffer, contentType: string): Promise<Parsed> {
  return new Promise((resolve, reject) => {
    const parsed: Parsed = { fields: {}, files: [] };
    const reader = busboy({ headers: { 'content-type': contentType } });
    reader.on('field', (name, value) => (parsed.fields[name] = value));
    reader.on('file', (field, stream, info) => {
      void buffer(stream).then((bytes) => parsed.files.push({ field, name: info.filename ?? '', bytes }));
    });
    reader.on('close', () => setImmediate(() => resolve(parsed)));
    reader.on('error', reject);
    reader.end(body);
  });
}

describe('multipartFileBody', () => {
  test.each([0, 1, 1024 * 1024 - 1, 3 * 1024 * 1024 + 7])(
    'a %i-byte file: exact length, and busboy reads back the fields and the same bytes',
    async (size) => {
      const dir = await tempDir('dcx-multipart-');
      const path = join(dir, 'clip.mp4');
      const content = randomBytes(size);
      await writeFile(path, content);
      const form = multipartFileBody({ access: 'token' }, { field: 'file', path, name: 'clip.mp4', size });
      const body = await buffer(form.body);
      expect(body.length).toBe(form.contentLength);
      const parsed = await parse(body, form.contentType);
      expect(parsed.fields).toEqual({ access: 'token' });
      expect(parsed.files).toHaveLength(1);
      expect(parsed.files[0].field).toBe('file');
      expect(parsed.files[0].name).toBe('clip.mp4');
      expect(createHash('sha256').update(parsed.files[0].bytes).digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
    },
  );

  test('quotes and line breaks in the file name cannot break out of its header', async () => {
    const dir = await tempDir('dcx-multipart-');
    const path = join(dir, 'x');
    await writeFile(path, 'abc');
    const form = multipartFileBody({}, { field: 'file', path, name: 'a"b\r\nX-Injected: yes.txt', size: 3 });
    const parsed = await parse(await buffer(form.body), form.contentType);
    expect(parsed.files.map((f) => [f.name, f.bytes.toString()])).toEqual([['a%22b%0D%0AX-Injected: yes.txt', 'abc']]);
  });

  test('sends exactly the announced size even if the file grew after it was measured', async () => {
    const dir = await tempDir('dcx-multipart-');
    const path = join(dir, 'growing');
    await writeFile(path, 'abcdef');
    const form = multipartFileBody({}, { field: 'file', path, name: 'growing', size: 4 });
    const body = await buffer(form.body);
    expect(body.length).toBe(form.contentLength);
    expect((await parse(body, form.contentType)).files[0].bytes.toString()).toBe('abcd');
  });

  test('tells onRead each chunk of the file as it goes into the body, adding up to its size', async () => {
    const dir = await tempDir('dcx-multipart-');
    const path = join(dir, 'big');
    const size = 2.5 * 1024 * 1024;
    await writeFile(path, randomBytes(size));
    const reads: number[] = [];
    const form = multipartFileBody({}, { field: 'file', path, name: 'big', size, onRead: (n) => reads.push(n) });
    await buffer(form.body);
    expect(reads.length).toBeGreaterThan(1);
    expect(reads.reduce((a, b) => a + b, 0)).toBe(size);
  });
});
