import { resolve } from 'node:path';
import { Agent } from '../agent/agent.js';
import { AgentStateFile, processAlive } from '../agent/state.js';
import { dcxCommand } from '../agent/host-tools.js';
import { MAX_LEASE_SECONDS, MIN_LEASE_SECONDS } from '../agent/inbox-next.js';
import { installService, launchdRecipe, ServiceSpec, uninstallService, windowsRecipe } from '../agent/service.js';
import { agentDeps } from '../agent/wiring.js';
import { prepareOutputDir } from '../accept-bundle.js';
import { ConfirmOptions } from '../confirm-client.js';
import { CommandContext } from '../context.js';
import { DcxError, usageError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { DcxHome } from '../home.js';
import { parseHttpUrl } from '../http.js';
import { RequestSigner } from '../signed-request.js';

export interface AgentCommandOptions {
  out?: string;
  leaseSeconds?: string;
  install?: boolean;
  uninstall?: boolean;
  /** `--no-enable` makes this false. */
  enable: boolean;
  /** --via, --confirm-timeout: how confirmations kept in the outbox are sent. */
  confirm?: ConfirmOptions;
}

/**
 * `dcx agent [server-url] --out DIR`: stays running, receives every delivery addressed to this installation
 * and confirms it (docs/design/resident-agent.md §4). `--install` / `--uninstall`: the same as a service.
 */
export async function agentCommand(
  urlText: string | undefined,
  options: AgentCommandOptions,
  ctx: CommandContext,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (options.install && options.uninstall) throw usageError('give --install or --uninstall, not both');
  if (options.uninstall) {
    ctx.out((await uninstallService(options.enable, env)).lines.join('\n'));
    return;
  }
  if (options.out === undefined) throw usageError('--out <dir> is required: where the agent saves what it receives');
  const leaseSeconds = parseLease(options.leaseSeconds);
  const origin = await enrolledOrigin(ctx.home, urlText);
  const out = resolve(options.out);

  if (options.install) {
    await installAgent(origin, out, leaseSeconds, options, ctx, env);
    return;
  }

  await prepareOutputDir(out);
  await refuseSecondAgent(ctx.home);
  const enrolled = await RequestSigner.forEnrolledOrigin(ctx.home, origin);
  if (!enrolled) throw notEnrolled(origin);
  const agent = new Agent(agentDeps(ctx, enrolled.signer, out, options.confirm), {
    origin,
    out,
    leaseSeconds,
    log: (line) => ctx.out(line),
    notice: (line) => ctx.notice(`dcx agent: ${line}`),
    env,
  });
  // main.ts exits on SIGINT/SIGTERM right after its own handler (removing temp files, so no partial file
  // is left in --out; a lease not acked simply expires). This one runs first and records the stop.
  const onSignal = () => {
    agent.stop();
    agent.recordStopSync();
  };
  process.prependOnceListener('SIGTERM', onSignal);
  process.prependOnceListener('SIGINT', onSignal);
  ctx.notice(`dcx agent: receiving deliveries from ${origin} into ${out} (pid ${process.pid})`);
  try {
    await agent.run();
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

/** `--install`: the systemd user unit running this same agent command line, and the other systems' recipes. */
async function installAgent(
  origin: string,
  out: string,
  leaseSeconds: number | undefined,
  options: AgentCommandOptions,
  ctx: CommandContext,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const spec: ServiceSpec = {
    command: [
      ...dcxCommand(),
      'agent',
      origin,
      '--out',
      out,
      ...(leaseSeconds ? ['--lease-seconds', String(leaseSeconds)] : []),
      ...(options.confirm?.via && options.confirm.via !== 'auto' ? ['--via', options.confirm.via] : []),
    ],
    dcxHome: ctx.home.dir,
    server: origin,
    out,
  };
  const report = await installService(spec, options.enable, env);
  ctx.out([...report.lines, '', launchdRecipe(spec), '', windowsRecipe(spec)].join('\n'));
}

async function refuseSecondAgent(home: DcxHome): Promise<void> {
  // Two agents of one installation would take the event stream from each other (bye `replaced`) all day.
  const running = await new AgentStateFile(home).read();
  if (running && !running.stoppedAt && running.pid !== process.pid && processAlive(running.pid)) {
    throw new DcxError(
      ExitCode.Failure,
      `an agent already runs for this installation (pid ${running.pid}, DCX_HOME ${home.dir}); \`dcx status\` shows it`,
    );
  }
}

function parseLease(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < MIN_LEASE_SECONDS || value > MAX_LEASE_SECONDS) {
    throw usageError(`--lease-seconds ${JSON.stringify(text)} must be a whole number from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}`);
  }
  return value;
}

function notEnrolled(origin: string): DcxError {
  return new DcxError(ExitCode.Refused, `this installation is not enrolled at ${origin}; run \`dcx enrol ${origin} --code <code>\``);
}

/** The server given, which must be one this installation is enrolled at; or the only one it is enrolled at. */
async function enrolledOrigin(home: DcxHome, urlText: string | undefined): Promise<string> {
  if (urlText !== undefined) {
    const origin = parseHttpUrl(urlText, 'server URL').origin;
    if (!(await home.enrolments().findByOrigin(origin))) throw notEnrolled(origin);
    return origin;
  }
  const enrolments = await home.enrolments().list();
  if (enrolments.length === 1) return enrolments[0].origin;
  if (enrolments.length === 0) {
    throw new DcxError(
      ExitCode.Refused,
      'this installation is not enrolled at any server; run `dcx enrol <server-url> --code <code>` first',
    );
  }
  throw usageError(`enrolled at ${enrolments.length} servers (${enrolments.map((e) => e.origin).join(', ')}): give the server URL`);
}
