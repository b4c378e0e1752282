import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeTempDirs, tempDir } from '../../client/testing/temp-dirs.js';
import { loadAppConfig } from './app-config.js';

afterAll(removeTempDirs);

/** CONFIRM_TLS_CERT / CONFIRM_TLS_KEY, validated once at start: together, readable, and a certificate with its key. */
describe('CONFIRM_TLS_CERT and CONFIRM_TLS_KEY', () => {
  let dir: string;
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=dcx'];
  beforeAll(async () => {
    dir = await tempDir('dcx-tls-config-');
    for (const name of ['a', 'b'])
      execFileSync('openssl', ['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`], { cwd: dir, stdio: 'ignore' });
    await writeFile(join(dir, 'secret.key'), 'not a key');
  });

  test('unset: plain frames only', () => {
    expect(loadAppConfig({}, dir).confirmTls).toBeUndefined();
  });

  test('a certificate and its key (paths relative to the working directory) are read once', () => {
    const tls = loadAppConfig({ CONFIRM_TLS_CERT: 'a.pem', CONFIRM_TLS_KEY: 'a.key' }, dir).confirmTls!;
    expect(tls.cert.toString()).toContain('BEGIN CERTIFICATE');
    expect(tls.key.toString()).toContain('PRIVATE KEY');
  });

  test('one without the other, a missing file, another certificate’s key: refused at start, naming files, never contents', () => {
    expect(() => loadAppConfig({ CONFIRM_TLS_CERT: 'a.pem' }, dir)).toThrow(/CONFIRM_TLS_CERT and CONFIRM_TLS_KEY go together/);
    expect(() => loadAppConfig({ CONFIRM_TLS_CERT: 'none.pem', CONFIRM_TLS_KEY: 'a.key' }, dir)).toThrow(
      /CONFIRM_TLS_CERT "none.pem" cannot be read \(ENOENT\)/,
    );
    expect(() => loadAppConfig({ CONFIRM_TLS_CERT: 'a.pem', CONFIRM_TLS_KEY: 'b.key' }, dir)).toThrow(
      /do not make a TLS certificate and its key/,
    );
    let message = '';
    try {
      loadAppConfig({ CONFIRM_TLS_CERT: 'a.pem', CONFIRM_TLS_KEY: 'secret.key' }, dir);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/do not make a TLS certificate/);
    expect(message).not.toContain('not a key');
  });
});
