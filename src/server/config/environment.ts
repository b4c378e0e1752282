import { hostname } from 'node:os';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateBy,
  validateSync,
} from 'class-validator';
import { parseDurationMs } from './duration.js';

/** A configuration value that cannot be used; its message names the variable and is safe to print. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The variables DCX reads, exactly as the environment names them. */
export const ENVIRONMENT_VARIABLES = [
  'PORT',
  'CONFIRM_PORT',
  'CONFIRM_BIND_HOST',
  'TRUST_PROXY',
  'PUBLIC_HOST',
  'PUBLIC_URL',
  'DATA_DIR',
  'DATABASE_URL',
  'ADMIN_TOKEN',
  'SERVER_KEY_FILE',
  'DELIVERY_TTL_SECONDS',
  'DELIVERY_TTL',
  'EXPIRY_CHECK_INTERVAL_MS',
  'EXPIRY_BATCH_SIZE',
  'WEBHOOK_MAX_ATTEMPTS',
  'WEBHOOK_TIMEOUT_MS',
  'WEBHOOK_BACKOFF_BASE_MS',
  'WEBHOOK_BACKOFF_MAX_MS',
  'WEBHOOK_CONCURRENCY',
  'WEBHOOK_POLL_INTERVAL_MS',
  'MAX_UPLOAD_BYTES',
  'CONFIRM_MAX_FRAME_BYTES',
  'CONFIRM_IDLE_TIMEOUT_MS',
  'CONFIRM_MAX_CONNECTIONS',
  'CONFIRM_TLS_CERT',
  'CONFIRM_TLS_KEY',
  'DB_POOL_SIZE',
  'DB_PREPARED_STATEMENTS',
  'BATCH_SIGNATURES',
  'LOG_LEVEL',
  'METRICS_TOKEN',
  'INBOX_HEARTBEAT',
  'INBOX_RECONNECT_MS',
  'INBOX_LEASE',
] as const;

/** pino's levels, most to least severe; `silent` logs nothing. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Variables whose values are secrets: never echoed in a configuration error. */
const SECRET_VARIABLES: ReadonlySet<string> = new Set(['ADMIN_TOKEN', 'DATABASE_URL', 'METRICS_TOKEN']);

export type EnvironmentVariableName = (typeof ENVIRONMENT_VARIABLES)[number];
export type RawEnvironment = Readonly<Record<string, string | undefined>>;

/** Decimal digits become a number; anything else stays a string so that the check below reports it. */
const toInteger = Transform(({ value }: { value: unknown }) =>
  typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value,
);

/** An integer variable in [min, max], with one message naming the variable and the range. */
function IntegerIn(min: number, max: number): PropertyDecorator {
  const message = ({ property }: { property: string }) => `${property} must be an integer from ${min} to ${max}`;
  return (target, key) => {
    for (const decorator of [toInteger, IsInt({ message }), Min(min, { message }), Max(max, { message })]) decorator(target, key);
  };
}

/** A duration variable (`90s`, `15m`, `24h`, `7d`, `500ms` or plain seconds) from min to max, inclusive. */
function DurationIn(minMs: number, maxMs: number, range: string): PropertyDecorator {
  return ValidateBy({
    name: 'isDuration',
    validator: {
      validate: (value: unknown) => {
        const ms = typeof value === 'string' ? parseDurationMs(value) : null;
        return ms !== null && ms >= minMs && ms <= maxMs;
      },
      defaultMessage: (args) => `${args?.property} must be a duration such as 90s, 15m, 24h, 7d or plain seconds, ${range}`,
    },
  });
}

const GIB = 1024 ** 3;
const DAY_MS = 86_400_000;

/**
 * The environment after validation. Defaults live here; derived values (absolute paths,
 * the public URL) are computed by AppConfig.
 */
export class EnvironmentVariables {
  @IntegerIn(1, 65535)
  PORT: number = 8080;

  /** 0 lets the OS pick (tests); the listener reports the bound port. */
  @IntegerIn(0, 65535)
  CONFIRM_PORT: number = 7070;

  @IsString()
  @Matches(/^[A-Za-z0-9.\-:]+$/, { message: 'CONFIRM_BIND_HOST must be an IP address or a host name' })
  CONFIRM_BIND_HOST: string = '0.0.0.0';

  /**
   * Which proxies may set X-Forwarded-For (Express's trust proxy): false (default), true, a hop count, or a comma
   * list of addresses/subnets/loopback,linklocal,uniquelocal.
   */
  @IsString()
  @Matches(/^(true|false|\d{1,2}|[A-Za-z0-9.:/]+(\s*,\s*[A-Za-z0-9.:/]+)*)$/, {
    message: 'TRUST_PROXY must be true, false, a hop count or a comma-separated list of addresses/subnets',
  })
  TRUST_PROXY: string = 'false';

  @IsString()
  @MinLength(1)
  @MaxLength(253)
  @Matches(/^[A-Za-z0-9.\-:[\]]+$/, { message: 'PUBLIC_HOST must be a host name or an IP address' })
  PUBLIC_HOST: string = hostname();

  @IsOptional()
  @IsUrl(
    { protocols: ['http', 'https'], require_protocol: true, require_tld: false },
    { message: 'PUBLIC_URL must be an http:// or https:// URL' },
  )
  PUBLIC_URL?: string;

  @IsString()
  @MinLength(1)
  DATA_DIR: string = './var';

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/[^\s]+$/, { message: 'DATABASE_URL must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'ADMIN_TOKEN must be at least 16 characters long' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'ADMIN_TOKEN must be printable ASCII without spaces' })
  ADMIN_TOKEN?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  SERVER_KEY_FILE?: string;

  /** The older form of DELIVERY_TTL; setting both is refused. */
  @IntegerIn(60, 366 * 86400)
  DELIVERY_TTL_SECONDS: number = 86400;

  @IsOptional()
  @DurationIn(1000, 366 * DAY_MS, 'from 1s to 366d')
  DELIVERY_TTL?: string;

  @IntegerIn(100, DAY_MS)
  EXPIRY_CHECK_INTERVAL_MS: number = 30_000;

  @IntegerIn(1, 10_000)
  EXPIRY_BATCH_SIZE: number = 500;

  @IntegerIn(1, 100)
  WEBHOOK_MAX_ATTEMPTS: number = 10;

  @IntegerIn(100, 300_000)
  WEBHOOK_TIMEOUT_MS: number = 10_000;

  @IntegerIn(10, 3_600_000)
  WEBHOOK_BACKOFF_BASE_MS: number = 1000;

  @IntegerIn(10, DAY_MS)
  WEBHOOK_BACKOFF_MAX_MS: number = 3_600_000;

  @IntegerIn(1, 100)
  WEBHOOK_CONCURRENCY: number = 4;

  @IntegerIn(50, 60_000)
  WEBHOOK_POLL_INTERVAL_MS: number = 1000;

  @IntegerIn(1, Number.MAX_SAFE_INTEGER)
  MAX_UPLOAD_BYTES: number = 64 * GIB;

  @IntegerIn(512, 16 * 1024 * 1024)
  CONFIRM_MAX_FRAME_BYTES: number = 65536;

  @IntegerIn(100, 3_600_000)
  CONFIRM_IDLE_TIMEOUT_MS: number = 10000;

  @IntegerIn(1, 1_000_000)
  CONFIRM_MAX_CONNECTIONS: number = 1024;

  /** PEM certificate (chain) file: with CONFIRM_TLS_KEY, the confirmation listener also speaks TLS. */
  @IsOptional()
  @IsString()
  @MinLength(1)
  CONFIRM_TLS_CERT?: string;

  /** PEM private key file of CONFIRM_TLS_CERT. */
  @IsOptional()
  @IsString()
  @MinLength(1)
  CONFIRM_TLS_KEY?: string;

  @IntegerIn(1, 1000)
  DB_POOL_SIZE: number = 10;

  /** false: no named prepared statements (for a connection pooler that does not keep them). */
  @IsIn(['true', 'false'], { message: 'DB_PREPARED_STATEMENTS must be true or false' })
  DB_PREPARED_STATEMENTS: 'true' | 'false' = 'true';

  /** false: every plug-in data record and receipt signed on its own (version 1), for dcx clients that predate version 2. */
  @IsIn(['true', 'false'], { message: 'BATCH_SIGNATURES must be true or false' })
  BATCH_SIGNATURES: 'true' | 'false' = 'true';

  @IsIn(LOG_LEVELS, { message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` })
  LOG_LEVEL: LogLevel = 'info';

  /** A bearer token for GET /metrics only (a scraper need not hold the admin token); unset: the admin token. */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters long' })
  @Matches(/^[\x21-\x7e]+$/, { message: 'METRICS_TOKEN must be printable ASCII without spaces' })
  METRICS_TOKEN?: string;

  /** How often each inbox event stream gets a heartbeat comment, so that proxies keep it open (issue 16). */
  @DurationIn(100, 3_600_000, 'from 100ms to 1h')
  INBOX_HEARTBEAT: string = '25s';

  /** The reconnect delay suggested to agents (the stream's `retry:` field and `bye`). */
  @IntegerIn(100, 3_600_000)
  INBOX_RECONNECT_MS: number = 5000;

  /** How long `POST /api/inbox/next` leases a delivery when the request names no leaseSeconds. */
  @DurationIn(10_000, 3_600_000, 'from 10s to 1h')
  INBOX_LEASE: string = '5m';
}

/**
 * Validates the DCX variables of `raw` (other keys are ignored; unset or empty means the default).
 * Throws one ConfigError naming every bad variable; secrets are never echoed.
 */
export function validateEnvironment(raw: RawEnvironment): EnvironmentVariables {
  const plain: Record<string, string> = {};
  for (const name of ENVIRONMENT_VARIABLES) {
    const value = raw[name];
    if (value !== undefined && value.trim() !== '') plain[name] = value.trim();
  }
  const env = plainToInstance(EnvironmentVariables, plain);
  const errors = validateSync(env, { forbidUnknownValues: true, stopAtFirstError: true });
  const problems = errors.map((error) => {
    const messages = Object.values(error.constraints ?? {}).join('; ') || `${error.property} is invalid`;
    return SECRET_VARIABLES.has(error.property) ? messages : `${messages} (got ${JSON.stringify(plain[error.property])})`;
  });
  if (plain.DELIVERY_TTL !== undefined && plain.DELIVERY_TTL_SECONDS !== undefined) {
    problems.push('DELIVERY_TTL and DELIVERY_TTL_SECONDS are both set; set only one (DELIVERY_TTL takes a duration such as 24h)');
  }
  if ((plain.CONFIRM_TLS_CERT === undefined) !== (plain.CONFIRM_TLS_KEY === undefined)) {
    problems.push('CONFIRM_TLS_CERT and CONFIRM_TLS_KEY go together: set both (PEM files) or neither');
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  return env;
}
