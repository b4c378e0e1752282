import { QueryFailedError } from 'typeorm';
import { isDatabaseUnavailable } from './database-unavailable.filter.js';

/** Errors shaped as pg and TypeORM throw them (pg's DatabaseError carries the SQLSTATE in `code`). */
function pgError(message: string, code?: string): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

describe('isDatabaseUnavailable', () => {
  test.each([
    ['ALLOW_CONNECTIONS false', pgError('database "dcx" is not currently accepting connections', '55000')],
    ['pg_terminate_backend', pgError('terminating connection due to administrator command', '57P01')],
    ['server starting up', pgError('the database system is starting up', '57P03')],
    ['too many connections', pgError('sorry, too many clients already', '53300')],
    ['connection exception class', pgError('connection failure', '08006')],
    ['socket closed', pgError('Connection terminated unexpectedly')],
    ['refused', pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['pool timeout', pgError('timeout exceeded when trying to connect')],
    ['wrapped by TypeORM', new QueryFailedError('SELECT 1', [], pgError('terminating connection due to administrator command', '57P01'))],
  ])('%s: unavailable', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  test.each([
    ['unique violation', new QueryFailedError('INSERT', [], pgError('duplicate key value violates unique constraint', '23505'))],
    ['syntax error', pgError('syntax error at or near "x"', '42601')],
    ['lock not available', pgError('could not obtain lock', '55P03')],
    ['plain error', new Error('the stored file is missing')],
    ['not an error', 'Connection terminated'],
    ['null', null],
  ])('%s: not unavailable', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});
