import pino from 'pino';
import { PinoNestLogger, rootLoggerOptions } from './logging.js';
import { READY_CONTEXT, ReadableLogStream } from './readable-log.js';

/** A real root logger writing through the readable stream; what a terminal would show. */
function terminal(): { nest: PinoNestLogger; root: pino.Logger; shown: string[] } {
  const shown: string[] = [];
  const root = pino(rootLoggerOptions(), new ReadableLogStream({ write: (text: string) => shown.push(...text.trimEnd().split('\n')) }));
  return { nest: new PinoNestLogger(root), root, shown };
}

describe('ReadableLogStream', () => {
  it('shows one line for the whole start-up, then a short line per log line', () => {
    const { nest, root, shown } = terminal();
    for (let i = 0; i < 30; i++) nest.log(`Mapped {/api/x${i}, GET} route`, 'RouterExplorer');
    nest.log('AppModule dependencies initialized', 'InstanceLoader');
    nest.log('server key 0123 from /data/server-keys.json', 'ServerKeysService');
    nest.log('DCX listening on http://[::]:8080, confirmation port 7070', READY_CONTEXT);
    nest.log('expired 3 deliveries', 'ExpiryService');
    root.info({ req: { method: 'GET', url: '/health' }, res: { statusCode: 200 }, responseTime: 3 }, 'request completed');

    expect(shown).toHaveLength(3);
    expect(shown[0]).toMatch(/^\d\d:\d\d:\d\d info {2}DCX: DCX listening on http:\/\/\[::\]:8080, confirmation port 7070$/);
    expect(shown[1]).toMatch(/ info {2}ExpiryService: expired 3 deliveries$/);
    expect(shown[2]).toMatch(/ info {2}GET \/health 200 3ms$/);
  });

  it('never hides a warning or an error, during the start-up or after', () => {
    const { nest, shown } = terminal();
    nest.warn('ADMIN_TOKEN is short', 'AdminTokenService');
    nest.error(new Error('database went away'), 'DatabaseModule');
    nest.log('late route', 'RouterExplorer');
    nest.log('up', READY_CONTEXT);
    nest.log('Mapped {/x, GET} route', 'RouterExplorer');
    expect(shown.map((line) => line.slice(9))).toEqual([
      'warn  AdminTokenService: ADMIN_TOKEN is short',
      'error DatabaseModule: database went away',
      'info  DCX: up',
    ]);
  });

  it('passes a line that is not JSON through as it is', () => {
    const shown: string[] = [];
    new ReadableLogStream({ write: (text: string) => shown.push(text) }).write('plain text\n');
    expect(shown).toEqual(['plain text\n']);
  });
});
