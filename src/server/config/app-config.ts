import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { parseDurationMs } from './duration.js';
import { ConfigError, EnvironmentVariables, LogLevel, RawEnvironment, validateEnvironment } from './environment.js';

/** The confirmation listener's certificate and key (PEM), read and checked once at start. */
export interface ConfirmTls {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads CONFIRM_TLS_CERT / CONFIRM_TLS_KEY and checks that they make a TLS context (a key that is not the
 * certificate's fails here, at start, not at the first client). Messages name files, never their contents.
 */
function loadConfirmTls(certFile: string | undefined, keyFile: string | undefined, cwd: string): ConfirmTls | undefined {
  if (certFile === undefined || keyFile === undefined) return undefined;
  const read = (name: string, file: string) => {
    try {
      return readFileSync(resolve(cwd, file));
    } catch (error) {
      throw new ConfigError(
        `invalid configuration: ${name} ${JSON.stringify(file)} cannot be read (${(error as NodeJS.ErrnoException).code})`,
      );
    }
  };
  const tls = { cert: read('CONFIRM_TLS_CERT', certFile), key: read('CONFIRM_TLS_KEY', keyFile) };
  try {
    createSecureContext(tls);
  } catch (error) {
    const why = (error as Error).message.split('\n')[0];
    throw new ConfigError(`invalid configuration: CONFIRM_TLS_CERT and CONFIRM_TLS_KEY do not make a TLS certificate and its key (${why})`);
  }
  return tls;
}

/**
 * The validated configuration, built once at start and injected everywhere (inject `AppConfig`).
 * Paths are absolute; the public URL has no trailing slash.
 */
export class AppConfig {
  /** HTTP port (PORT). */
  readonly port: number;
  /** TCP port of the delivery confirmation receiver (CONFIRM_PORT). */
  readonly confirmPort: number;
  /** Address the confirmation receiver binds to (CONFIRM_BIND_HOST, default 0.0.0.0). */
  readonly confirmBindHost: string;
  /** The trust-proxy setting, which decides request.ip (TRUST_PROXY, default false; see compileTrustProxy). */
  readonly trustProxy: boolean | number | string;
  /** Host name clients connect to for confirmation (PUBLIC_HOST). */
  readonly publicHost: string;
  /** HTTP origin written into bundles and returned in bundle URLs (PUBLIC_URL). */
  readonly publicUrl: string;
  /** Absolute data directory (DATA_DIR). */
  readonly dataDir: string;
  /** External PostgreSQL; undefined means the embedded PGlite database (DATABASE_URL). */
  readonly databaseUrl: string | undefined;
  /** Admin token given in the environment; undefined means the generated token file (ADMIN_TOKEN). */
  readonly adminToken: string | undefined;
  /** Absolute path of an operator-provided server key set file (SERVER_KEY_FILE). */
  readonly serverKeyFile: string | undefined;
  /** How long a delivery can be confirmed (DELIVERY_TTL, or DELIVERY_TTL_SECONDS), in seconds. */
  readonly deliveryTtlSeconds: number;
  /** The same, in milliseconds. */
  readonly deliveryTtlMs: number;
  /** How often issued/sent deliveries past their expiry are marked expired (EXPIRY_CHECK_INTERVAL_MS). */
  readonly expiryCheckIntervalMs: number;
  /** Deliveries expired per UPDATE statement (EXPIRY_BATCH_SIZE). */
  readonly expiryBatchSize: number;
  /** Webhook POSTs per event before giving up (WEBHOOK_MAX_ATTEMPTS). */
  readonly webhookMaxAttempts: number;
  /** One webhook POST may take this long before it counts as failed (WEBHOOK_TIMEOUT_MS). */
  readonly webhookTimeoutMs: number;
  /** Retry delay after the first failure, doubled after each further one (WEBHOOK_BACKOFF_BASE_MS)… */
  readonly webhookBackoffBaseMs: number;
  /** …up to this (WEBHOOK_BACKOFF_MAX_MS). */
  readonly webhookBackoffMaxMs: number;
  /** Webhook POSTs in flight at once, per server process (WEBHOOK_CONCURRENCY). */
  readonly webhookConcurrency: number;
  /** How often the webhook worker looks for due jobs when nothing woke it (WEBHOOK_POLL_INTERVAL_MS). */
  readonly webhookPollIntervalMs: number;
  readonly maxUploadBytes: number;
  readonly confirmMaxFrameBytes: number;
  readonly confirmIdleTimeoutMs: number;
  readonly confirmMaxConnections: number;
  /** TLS on the confirmation port besides plain frames (CONFIRM_TLS_CERT, CONFIRM_TLS_KEY); undefined: plain only. */
  readonly confirmTls: ConfirmTls | undefined;
  readonly dbPoolSize: number;
  /** Hot statements run as named prepared statements on PostgreSQL (DB_PREPARED_STATEMENTS, default true). */
  readonly dbPreparedStatements: boolean;
  /** Records issued or confirmed together share one signature (BATCH_SIGNATURES, default true; docs/PROTOCOL.md). */
  readonly batchSignatures: boolean;
  /** pino level of the JSON logs (LOG_LEVEL, default info). */
  readonly logLevel: LogLevel;
  /** Bearer token accepted by GET /metrics besides the admin token; undefined: admin token only (METRICS_TOKEN). */
  readonly metricsToken: string | undefined;
  /** Heartbeat comments of the inbox event streams, every this many ms (INBOX_HEARTBEAT, default 25s). */
  readonly inboxHeartbeatMs: number;
  /** The reconnect delay suggested to agents (INBOX_RECONNECT_MS, default 5000). */
  readonly inboxReconnectMs: number;
  /** The default lease of `POST /api/inbox/next`, in seconds (INBOX_LEASE, default 5m). */
  readonly inboxLeaseSeconds: number;

  /** DATA_DIR/admin-token: where a generated admin token is kept. */
  readonly adminTokenFile: string;
  /** DATA_DIR/keys: the generated server key set. */
  readonly keysDir: string;
  /** DATA_DIR/pgdata: the embedded database. */
  readonly pgDataDir: string;
  /** DATA_DIR/pgdata.lock */
  readonly pgLockFile: string;
  /** DATA_DIR/contents: content-addressed storage. */
  readonly contentsDir: string;
  /** DATA_DIR/tmp: uploads in progress. */
  readonly tmpDir: string;

  constructor(env: EnvironmentVariables, cwd: string = process.cwd()) {
    this.port = env.PORT;
    this.confirmPort = env.CONFIRM_PORT;
    this.confirmBindHost = env.CONFIRM_BIND_HOST;
    this.trustProxy =
      env.TRUST_PROXY === 'true'
        ? true
        : env.TRUST_PROXY === 'false'
          ? false
          : /^\d+$/.test(env.TRUST_PROXY)
            ? Number(env.TRUST_PROXY)
            : env.TRUST_PROXY;
    this.publicHost = env.PUBLIC_HOST;
    this.publicUrl = (env.PUBLIC_URL ?? `http://${env.PUBLIC_HOST}:${env.PORT}`).replace(/\/+$/, '');
    this.dataDir = resolve(cwd, env.DATA_DIR);
    this.databaseUrl = env.DATABASE_URL;
    this.adminToken = env.ADMIN_TOKEN;
    this.serverKeyFile = env.SERVER_KEY_FILE === undefined ? undefined : resolve(cwd, env.SERVER_KEY_FILE);
    this.deliveryTtlMs = env.DELIVERY_TTL !== undefined ? parseDurationMs(env.DELIVERY_TTL)! : env.DELIVERY_TTL_SECONDS * 1000;
    this.deliveryTtlSeconds = this.deliveryTtlMs / 1000;
    this.expiryCheckIntervalMs = env.EXPIRY_CHECK_INTERVAL_MS;
    this.expiryBatchSize = env.EXPIRY_BATCH_SIZE;
    this.webhookMaxAttempts = env.WEBHOOK_MAX_ATTEMPTS;
    this.webhookTimeoutMs = env.WEBHOOK_TIMEOUT_MS;
    this.webhookBackoffBaseMs = env.WEBHOOK_BACKOFF_BASE_MS;
    this.webhookBackoffMaxMs = Math.max(env.WEBHOOK_BACKOFF_MAX_MS, env.WEBHOOK_BACKOFF_BASE_MS);
    this.webhookConcurrency = env.WEBHOOK_CONCURRENCY;
    this.webhookPollIntervalMs = env.WEBHOOK_POLL_INTERVAL_MS;
    this.maxUploadBytes = env.MAX_UPLOAD_BYTES;
    this.confirmMaxFrameBytes = env.CONFIRM_MAX_FRAME_BYTES;
    this.confirmIdleTimeoutMs = env.CONFIRM_IDLE_TIMEOUT_MS;
    this.confirmMaxConnections = env.CONFIRM_MAX_CONNECTIONS;
    this.confirmTls = loadConfirmTls(env.CONFIRM_TLS_CERT, env.CONFIRM_TLS_KEY, cwd);
    this.dbPoolSize = env.DB_POOL_SIZE;
    this.dbPreparedStatements = env.DB_PREPARED_STATEMENTS === 'true';
    this.batchSignatures = env.BATCH_SIGNATURES === 'true';
    this.logLevel = env.LOG_LEVEL;
    this.metricsToken = env.METRICS_TOKEN;
    this.inboxHeartbeatMs = parseDurationMs(env.INBOX_HEARTBEAT)!;
    this.inboxReconnectMs = env.INBOX_RECONNECT_MS;
    this.inboxLeaseSeconds = Math.floor(parseDurationMs(env.INBOX_LEASE)! / 1000);

    this.adminTokenFile = resolve(this.dataDir, 'admin-token');
    this.keysDir = resolve(this.dataDir, 'keys');
    this.pgDataDir = resolve(this.dataDir, 'pgdata');
    this.pgLockFile = resolve(this.dataDir, 'pgdata.lock');
    this.contentsDir = resolve(this.dataDir, 'contents');
    this.tmpDir = resolve(this.dataDir, 'tmp');
  }

  /** One line describing the database, without credentials. */
  describeDatabase(): string {
    if (this.databaseUrl === undefined) return `embedded PGlite at ${this.pgDataDir}`;
    try {
      const url = new URL(this.databaseUrl);
      return `PostgreSQL ${url.hostname}${url.port ? `:${url.port}` : ''}${url.pathname}`;
    } catch {
      return 'PostgreSQL (DATABASE_URL)';
    }
  }
}

/** Validates `env` (process.env by default) and builds the AppConfig; throws ConfigError naming the bad variable. */
export function loadAppConfig(env: RawEnvironment = process.env, cwd: string = process.cwd()): AppConfig {
  return new AppConfig(validateEnvironment(env), cwd);
}
