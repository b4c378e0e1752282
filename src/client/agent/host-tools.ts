// The desktop's own tools (systemctl, update-mime-database, xdg-mime): run when installed, reported
// either way, so a user sees exactly what `dcx agent --install` or `dcx register` changed.
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { errnoCode, messageOf } from '../errors.js';

/** A tool that hangs (a D-Bus call with no session bus) must not hang the command. */
export const TOOL_TIMEOUT_MS = 20_000;

export type ToolOutcome = { ran: true; ok: true } | { ran: true; ok: false; error: string } | { ran: false };

/** Runs `command args…`; `{ran: false}` when the command is not installed. */
export function runTool(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ToolOutcome> {
  return new Promise((done) => {
    execFile(command, args, { env, timeout: TOOL_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (!error) return done({ ran: true, ok: true });
      if (errnoCode(error) === 'ENOENT') return done({ ran: false });
      const why = String(stderr).trim().split('\n').at(-1) || messageOf(error);
      done({ ran: true, ok: false, error: why });
    });
  });
}

/** One line saying what happened to `command`. */
export function toolLine(command: string, args: string[], outcome: ToolOutcome): string {
  const shown = [command, ...args].join(' ');
  if (!outcome.ran) return `skipped: ${shown} (${command} is not installed)`;
  return outcome.ok ? `ran: ${shown}` : `failed: ${shown}: ${outcome.error}`;
}

/** An XDG base directory: the variable when it is an absolute path (the spec ignores relative ones), else the default. */
function xdgDir(env: NodeJS.ProcessEnv, variable: string, fallback: string[]): string {
  const value = env[variable];
  if (value && isAbsolute(value)) return value;
  return join(env.HOME ? resolve(env.HOME) : homedir(), ...fallback);
}

export const xdgConfigHome = (env: NodeJS.ProcessEnv = process.env) => xdgDir(env, 'XDG_CONFIG_HOME', ['.config']);
export const xdgDataHome = (env: NodeJS.ProcessEnv = process.env) => xdgDir(env, 'XDG_DATA_HOME', ['.local', 'share']);

/**
 * How to start this same `dcx` again from a unit file or a desktop entry: node and the script when run as
 * `node …/main.js` (the package's bin), the executable alone when it is a single executable.
 */
export function dcxCommand(argv: readonly string[] = process.argv, execPath = process.execPath): string[] {
  const script = argv[1];
  if (script && /\.[cm]?js$/.test(script)) return [execPath, resolve(script)];
  return [execPath];
}
