import type { DestinationStream } from 'pino';

/** Nest's own start-up chatter (one line per module, controller and route): noise on a terminal. */
const START_UP_CONTEXTS = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestFactory', 'NestApplication']);
/** The context of the line that says the server is up (main.ts): the end of the start-up. */
export const READY_CONTEXT = 'DCX';
const WARN = 40;
const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

interface LogLine {
  level?: number;
  time?: number;
  context?: string;
  msg?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  responseTime?: number;
  err?: { message?: string };
}

/**
 * What a person at a terminal reads instead of JSON lines: until the server is up only warnings, errors and the
 * one "DCX listening …" summary; after that one short line per log line (`12:00:01 info  GET /x 200 3ms`).
 * Used only when stdout is a TTY: anything else (a file, a pipe, a log collector) keeps pino's JSON.
 */
export class ReadableLogStream implements DestinationStream {
  private startingUp = true;

  constructor(private readonly out: { write(text: string): unknown }) {}

  write(chunk: string): void {
    for (const text of chunk.split('\n')) {
      if (text === '') continue;
      const line = parseLine(text);
      const shown = line ? this.readable(line) : text;
      if (shown !== null) this.out.write(`${shown}\n`);
    }
  }

  private readable(line: LogLine): string | null {
    const level = line.level ?? 30;
    if (line.context === READY_CONTEXT) this.startingUp = false;
    else if (level < WARN && (this.startingUp || START_UP_CONTEXTS.has(line.context ?? ''))) return null;
    const time = new Date(line.time ?? Date.now()).toTimeString().slice(0, 8);
    const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
    return `${time} ${name} ${describe(line)}`;
  }
}

function parseLine(text: string): LogLine | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? parsed : null;
  } catch {
    return null;
  }
}

function describe(line: LogLine): string {
  if (line.req && line.res) {
    const took = line.responseTime === undefined ? '' : ` ${line.responseTime}ms`;
    return `${line.req.method ?? '?'} ${line.req.url ?? '?'} ${line.res.statusCode ?? '?'}${took}`;
  }
  const context = line.context ? `${line.context}: ` : '';
  const error = line.err?.message && line.err.message !== line.msg ? ` (${line.err.message})` : '';
  return `${context}${line.msg ?? ''}${error}`;
}
