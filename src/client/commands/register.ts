import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { dcxCommand } from '../agent/host-tools.js';
import { register, unregister } from '../agent/desktop.js';
import { CommandContext } from '../context.js';
import { DcxError, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

export interface RegisterOptions {
  uninstall?: boolean;
  out?: string;
}

/** Where an opened bundle's content goes when --out is not given: the user's downloads. */
export function defaultOpenDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.HOME ? resolve(env.HOME) : homedir(), 'Downloads');
}

/**
 * `dcx register [--out DIR] [--uninstall]`: makes `dcx open` the desktop's handler of .dcx bundles and
 * .dcxp plug-in data (Linux: XDG desktop entry + shared-mime-info; macOS and Windows: README).
 */
export async function registerCommand(options: RegisterOptions, ctx: CommandContext, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    const lines = options.uninstall
      ? await unregister(env)
      : await register(dcxCommand(), resolve(options.out ?? defaultOpenDir(env)), env);
    ctx.out(lines.join('\n'));
  } catch (error) {
    throw new DcxError(
      ExitCode.Failure,
      `cannot ${options.uninstall ? 'unregister' : 'register'} dcx with the desktop: ${messageOf(error)}`,
    );
  }
}
