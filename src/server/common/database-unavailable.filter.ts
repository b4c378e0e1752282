import { ArgumentsHost, Catch, HttpStatus, Logger } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Seconds a client is asked to wait (Retry-After) when the database is unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

// SQLSTATE classes and codes that mean "no usable connection", not "this query is wrong":
// 08 connection exception, 57P01-57P03 admin/crash shutdown and cannot connect now, 53300 too many
// connections, 55000 with "not currently accepting connections" (ALLOW_CONNECTIONS false).
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-3]|53300)$/;
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGE =
  /connection terminated|not currently accepting connections|timeout exceeded when trying to connect|connection error/i;
const UNAVAILABLE_POOL_MESSAGE = /cannot use a pool after calling end|client was closed/i;

/**
 * Whether an error (or the driver error / cause it wraps, as TypeORM's QueryFailedError does) says
 * that the database cannot be reached, as opposed to a failed statement.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (depth > 4 || typeof error !== 'object' || error === null) return false;
  const { code, message, driverError, cause } = error as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))) return true;
  if (typeof message === 'string' && (UNAVAILABLE_MESSAGE.test(message) || UNAVAILABLE_POOL_MESSAGE.test(message))) return true;
  return isDatabaseUnavailable(driverError, depth + 1) || isDatabaseUnavailable(cause, depth + 1);
}

/**
 * A request that failed because the database went away is answered 503 with Retry-After and a clear
 * message (no host or credential), not 500; everything else goes to Nest's default handling.
 */
@Catch()
export class DatabaseUnavailableFilter extends BaseExceptionFilter {
  private readonly logger = new Logger('DatabaseUnavailable');

  override catch(exception: unknown, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<ServerResponse>();
    if (host.getType() === 'http' && host.switchToHttp().getRequest<IncomingMessage>().readableAborted) {
      // The client went away before its body was read (an upload cut off: Node's 'aborted', ECONNRESET):
      // there is no one to answer, the access line says 'request aborted', and it is no database outage.
      this.logger.debug(`request abandoned by the client: ${(exception as Error)?.message ?? String(exception)}`);
      return;
    }
    if (host.getType() !== 'http' || !isDatabaseUnavailable(exception) || response.headersSent) {
      super.catch(exception, host);
      return;
    }
    this.logger.warn(`database unavailable: ${(exception as Error).message}`);
    response.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
    const body = {
      statusCode: HttpStatus.SERVICE_UNAVAILABLE,
      error: 'Service Unavailable',
      message: 'the database is unavailable; try again later',
    };
    this.applicationRef!.reply(response, body, HttpStatus.SERVICE_UNAVAILABLE);
  }
}
