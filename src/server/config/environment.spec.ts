import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { loadAppConfig } from './app-config.js';
import { ConfigError } from './environment.js';

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadAppConfig(env, '/srv/dcx');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  test('defaults', () => {
    const config = loadAppConfig({}, '/srv/dcx');
    expect(config.port).toBe(8080);
    expect(config.confirmPort).toBe(7070);
    expect(config.publicHost).toBe(hostname());
    expect(config.publicUrl).toBe(`http://${hostname()}:8080`);
    expect(config.dataDir).toBe('/srv/dcx/var');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.adminToken).toBeUndefined();
    expect(config.serverKeyFile).toBeUndefined();
    expect(config.deliveryTtlSeconds).toBe(86400);
    expect(config.maxUploadBytes).toBe(64 * 1024 ** 3);
    expect(config.confirmMaxFrameBytes).toBe(65536);
    expect(config.confirmIdleTimeoutMs).toBe(10000);
    expect(config.confirmMaxConnections).toBe(1024);
    expect(config.dbPoolSize).toBe(10);
    expect(config.dbPreparedStatements).toBe(true);
    expect(config.batchSignatures).toBe(true);
    expect(config.confirmBindHost).toBe('0.0.0.0');
    expect(config.trustProxy).toBe(false);
    expect(config.adminTokenFile).toBe('/srv/dcx/var/admin-token');
    expect(config.pgLockFile).toBe('/srv/dcx/var/pgdata.lock');
    expect(config.logLevel).toBe('info');
    expect(config.metricsToken).toBeUndefined();
  });

  test('DB_PREPARED_STATEMENTS', () => {
    expect(loadAppConfig({ DB_PREPARED_STATEMENTS: 'false' }, '/').dbPreparedStatements).toBe(false);
    expect(loadAppConfig({ DB_PREPARED_STATEMENTS: 'true' }, '/').dbPreparedStatements).toBe(true);
    expect(errorOf({ DB_PREPARED_STATEMENTS: 'no' }).message).toContain('DB_PREPARED_STATEMENTS must be true or false (got "no")');
  });

  test('BATCH_SIGNATURES', () => {
    expect(loadAppConfig({ BATCH_SIGNATURES: 'false' }, '/').batchSignatures).toBe(false);
    expect(errorOf({ BATCH_SIGNATURES: 'yes' }).message).toContain('BATCH_SIGNATURES must be true or false (got "yes")');
  });

  test('LOG_LEVEL and METRICS_TOKEN', () => {
    const config = loadAppConfig({ LOG_LEVEL: 'debug', METRICS_TOKEN: 'a-metrics-scraper-token' }, '/');
    expect(config.logLevel).toBe('debug');
    expect(config.metricsToken).toBe('a-metrics-scraper-token');
    expect(errorOf({ LOG_LEVEL: 'verbose' }).message).toContain(
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "verbose")',
    );
    const short = errorOf({ METRICS_TOKEN: 'short-metrics' }).message;
    expect(short).toContain('METRICS_TOKEN must be at least 16 characters long');
    expect(short).not.toContain('short-metrics');
  });

  test('values are parsed, paths resolved, the public URL derived from host and port', () => {
    const config = loadAppConfig(
      {
        PORT: '9000',
        PUBLIC_HOST: 'dcx.example',
        DATA_DIR: 'data',
        SERVER_KEY_FILE: 'keys.json',
        MAX_UPLOAD_BYTES: '1024',
        TRUST_PROXY: '1',
      },
      '/srv/dcx',
    );
    expect(config.port).toBe(9000);
    expect(config.publicUrl).toBe('http://dcx.example:9000');
    expect(config.dataDir).toBe(resolve('/srv/dcx', 'data'));
    expect(config.serverKeyFile).toBe('/srv/dcx/keys.json');
    expect(config.maxUploadBytes).toBe(1024);
    expect(config.trustProxy).toBe(1);
  });

  test('PUBLIC_URL wins and loses its trailing slash; empty variables mean unset', () => {
    const config = loadAppConfig({ PUBLIC_URL: 'https://files.example.com/', PORT: '' }, '/');
    expect(config.publicUrl).toBe('https://files.example.com');
    expect(config.port).toBe(8080);
  });

  test.each([['abc'], ['0'], ['65536'], ['80.5'], ['-1'], ['1e3']])('a bad PORT (%s) is refused with a message naming PORT', (value) => {
    const error = errorOf({ PORT: value });
    expect(error.message).toContain('PORT must be an integer from 1 to 65535');
    expect(error.message).toContain(JSON.stringify(value));
    expect(error.message).not.toContain('CONFIRM_PORT');
  });

  test('every bad variable is named, one message each', () => {
    const error = errorOf({ DB_POOL_SIZE: 'many', CONFIRM_IDLE_TIMEOUT_MS: '5', PUBLIC_URL: 'ftp://x' });
    expect(error.message).toMatch(/DB_POOL_SIZE must be an integer from 1 to 1000 \(got "many"\)/);
    expect(error.message).toMatch(/CONFIRM_IDLE_TIMEOUT_MS must be an integer from 100 to 3600000/);
    expect(error.message).toMatch(/PUBLIC_URL must be an http/);
    expect(error.message.split(';')).toHaveLength(3);
  });

  test('secrets are not echoed', () => {
    expect(errorOf({ ADMIN_TOKEN: 'short-secret' }).message).not.toContain('short-secret');
    expect(errorOf({ DATABASE_URL: 'mysql://u:hunter2@db/x' }).message).not.toContain('hunter2');
  });

  test('the database description never shows the password', () => {
    const config = loadAppConfig({ DATABASE_URL: 'postgres://dcx:hunter2@db.internal:5433/dcx' }, '/');
    expect(config.describeDatabase()).toBe('PostgreSQL db.internal:5433/dcx');
    expect(loadAppConfig({ DATA_DIR: '/d' }, '/').describeDatabase()).toBe('embedded PGlite at /d/pgdata');
  });

  test('DELIVERY_TTL takes a duration; DELIVERY_TTL_SECONDS still works; both at once is refused', () => {
    expect(loadAppConfig({ DELIVERY_TTL: '15m' }, '/').deliveryTtlMs).toBe(900_000);
    expect(loadAppConfig({ DELIVERY_TTL: '90' }, '/').deliveryTtlSeconds).toBe(90);
    expect(loadAppConfig({ DELIVERY_TTL: '2s' }, '/').deliveryTtlMs).toBe(2000);
    expect(loadAppConfig({ DELIVERY_TTL_SECONDS: '3600' }, '/').deliveryTtlMs).toBe(3_600_000);
    expect(errorOf({ DELIVERY_TTL: 'soon' }).message).toMatch(/DELIVERY_TTL must be a duration such as 90s, 15m, 24h.*\(got "soon"\)/);
    expect(errorOf({ DELIVERY_TTL: '500ms' }).message).toMatch(/DELIVERY_TTL must be .* from 1s to 366d/);
    expect(errorOf({ DELIVERY_TTL: '1h', DELIVERY_TTL_SECONDS: '60' }).message).toMatch(
      /DELIVERY_TTL and DELIVERY_TTL_SECONDS are both set/,
    );
  });

  test('expiry and webhook settings have defaults and ranges', () => {
    const config = loadAppConfig({}, '/');
    expect(config.expiryCheckIntervalMs).toBe(30_000);
    expect(config.webhookMaxAttempts).toBe(10);
    expect(config.webhookTimeoutMs).toBe(10_000);
    expect(config.webhookConcurrency).toBe(4);
    expect(errorOf({ WEBHOOK_MAX_ATTEMPTS: '0' }).message).toMatch(/WEBHOOK_MAX_ATTEMPTS must be an integer from 1 to 100/);
    expect(errorOf({ EXPIRY_CHECK_INTERVAL_MS: 'often' }).message).toMatch(/EXPIRY_CHECK_INTERVAL_MS must be an integer/);
  });
});
