import { MAX_NAME_BYTES, normalizeMediaType, sanitizeFileName } from './file-name.js';

describe('sanitizeFileName', () => {
  test.each([
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\movie.mp4', 'movie.mp4'],
    ['dir/sub\\name.txt', 'name.txt'],
    ['bad\u0000name\r\n.txt', 'badname.txt'],
    ['evil\u202Etxt.exe', 'eviltxt.exe'],
    ['  spaced  ', 'spaced'],
    ['', 'content'],
    ['..', 'content'],
    ['.', 'content'],
    ['a/', 'a'],
    [undefined, 'content'],
    ['Cafe\u0301.txt', 'Café.txt'],
  ])('%j -> %j', (input, expected) => {
    expect(sanitizeFileName(input)).toBe(expected);
  });

  test('long names are cut to 255 UTF-8 bytes on a character boundary, keeping the extension', () => {
    const name = sanitizeFileName(`${'é'.repeat(300)}.mkv`);
    expect(Buffer.byteLength(name, 'utf8')).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(name.endsWith('.mkv')).toBe(true);
    expect(name).not.toContain('\uFFFD');
    expect(Buffer.from(name, 'utf8').toString('utf8')).toBe(name);

    const emoji = sanitizeFileName('😀'.repeat(100));
    expect(Buffer.byteLength(emoji, 'utf8')).toBe(252);
    expect([...emoji].every((c) => c === '😀')).toBe(true);
  });
});

describe('normalizeMediaType', () => {
  test.each([
    ['video/mp4', 'video/mp4'],
    ['Text/Plain; charset=utf-8', 'text/plain'],
    ['application/vnd.dcx.bundle+zip', 'application/vnd.dcx.bundle+zip'],
    ['', 'application/octet-stream'],
    [undefined, 'application/octet-stream'],
    ['not a type', 'application/octet-stream'],
    ['text/html\r\nX-Evil: 1', 'application/octet-stream'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeMediaType(input)).toBe(expected);
  });
});
