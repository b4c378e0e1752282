import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { DcxError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { candidateName, FALLBACK_NAME, hasPathTricks, moveToFreeName, resolveInside, sanitizeFileName } from './safe-path.js';
import { removeTempDirs, tempDir } from './testing/temp-dirs.js';

afterAll(removeTempDirs);

describe('sanitizeFileName', () => {
  test.each([
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['../', FALLBACK_NAME],
    ['..', FALLBACK_NAME],
    ['.', FALLBACK_NAME],
    ['', FALLBACK_NAME],
    ['/etc/shadow', 'shadow'],
    ['C:\\Windows\\system32\\evil.dll', 'evil.dll'],
    ['dir\\..\\..\\x.txt', 'x.txt'],
    ['a\u0000b.txt', 'ab.txt'],
    ['line\nbreak\r.txt', 'linebreak.txt'],
    ['\u0000', FALLBACK_NAME],
    ['what?<is>:"this"|*.txt', 'what__is___this___.txt'],
    ['CON', '_CON'],
    ['nul.txt', '_nul.txt'],
    ['com1.tar.gz', '_com1.tar.gz'],
    ['LPT9', '_LPT9'],
    ['console.txt', 'console.txt'],
    ['name. . .', 'name'],
    ['...', FALLBACK_NAME],
    ['  spaced.txt', 'spaced.txt'],
    ['.hidden', '.hidden'],
    ['film über.mp4', 'film über.mp4'],
  ])('%j → %j', (input, expected) => {
    const result = sanitizeFileName(input);
    expect(result).toBe(expected);
    expect(result).not.toMatch(/[/\\\0]/);
  });

  test('long names are cut to 255 UTF-8 bytes, keeping the extension', () => {
    const result = sanitizeFileName(`${'é'.repeat(300)}.pdf`);
    expect(Buffer.byteLength(result)).toBeLessThanOrEqual(255);
    expect(result.endsWith('.pdf')).toBe(true);
  });
});

describe('hasPathTricks', () => {
  test.each(['../x', '..', '.', '', 'a/b', '/abs', 'a\\b', '\\\\server\\share', 'C:evil', 'c:\\x', 'nul\u0000byte', 'tab\there'])(
    'refuses %j',
    (name) => {
      expect(hasPathTricks(name)).toBe(true);
    },
  );
  test.each(['movie.mp4', '.hidden', 'name with spaces (1).txt', 'CON', 'what?.txt'])('accepts %j (sanitised later)', (name) => {
    expect(hasPathTricks(name)).toBe(false);
  });
});

describe('resolveInside', () => {
  test('keeps plain names inside and refuses escapes', async () => {
    const dir = await tempDir();
    expect(resolveInside(dir, 'a.txt')).toBe(join(dir, 'a.txt'));
    for (const bad of ['../a.txt', '/etc/passwd', '.', '', `..${sep}..${sep}x`]) {
      let caught: unknown;
      try {
        resolveInside(dir, bad);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DcxError);
      expect((caught as DcxError).exitCode).toBe(ExitCode.UnusableBundle);
    }
  });

  test('a sibling directory sharing the prefix is outside', async () => {
    const dir = await tempDir();
    expect(() => resolveInside(join(dir, 'out'), `../out-evil${sep}x`)).toThrow(DcxError);
  });
});

describe('moveToFreeName', () => {
  test('never overwrites: adds " (n)" before the extension', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'movie.mp4'), 'first');
    await writeFile(join(dir, 'movie (1).mp4'), 'second');
    const temp = join(dir, '.incoming');
    await writeFile(temp, 'third');
    const path = await moveToFreeName(temp, dir, 'movie.mp4');
    expect(path).toBe(join(dir, 'movie (2).mp4'));
    expect(await readFile(join(dir, 'movie.mp4'), 'utf8')).toBe('first');
    expect(await readFile(join(dir, 'movie (1).mp4'), 'utf8')).toBe('second');
    expect(await readFile(path, 'utf8')).toBe('third');
    expect((await readdir(dir)).sort()).toEqual(['movie (1).mp4', 'movie (2).mp4', 'movie.mp4']);
  });

  test('a directory of that name counts as taken', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'data'));
    const temp = join(dir, '.incoming');
    await writeFile(temp, 'x');
    expect(await moveToFreeName(temp, dir, 'data')).toBe(join(dir, 'data (1)'));
  });

  test('candidate names', () => {
    expect(candidateName('a.tar.gz', 0)).toBe('a.tar.gz');
    expect(candidateName('a.tar.gz', 3)).toBe('a.tar (3).gz');
    expect(candidateName('README', 1)).toBe('README (1)');
    expect(candidateName('.bashrc', 1)).toBe('.bashrc (1)');
    expect(Buffer.byteLength(candidateName(`${'x'.repeat(251)}.txt`, 12))).toBeLessThanOrEqual(255);
  });
});
