import { DcxHome } from './home.js';

/** What every command gets: the client's home and where to write. Tests pass their own. */
export interface CommandContext {
  home: DcxHome;
  /** The result (human text or the one JSON object). */
  out: (text: string) => void;
  /** Informational lines for a human (pins made); never the result, never an error. */
  notice: (text: string) => void;
  /** Show progress bars (stderr is a terminal). */
  progress: boolean;
}

export function processContext(env: NodeJS.ProcessEnv = process.env): CommandContext {
  return {
    home: DcxHome.fromEnv(env),
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    notice: (text) => process.stderr.write(`${text}\n`),
    progress: process.stderr.isTTY === true,
  };
}
