import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ProtocolError } from '../protocol/errors.js';
import { agentCommand, AgentCommandOptions } from './commands/agent.js';
import { enrolCommand } from './commands/enrol.js';
import { fetchCommand } from './commands/fetch.js';
import { inboxCommand } from './commands/inbox.js';
import { inspectCommand } from './commands/inspect.js';
import { openCommand } from './commands/open.js';
import { publishCommand } from './commands/publish.js';
import { registerCommand } from './commands/register.js';
import { retryCommand } from './commands/retry.js';
import { pendingConfirmations, statusCommand } from './commands/status.js';
import { trustCommand } from './commands/trust.js';
import { verifyPackCommand } from './commands/verify-pack.js';
import { verifyReceiptCommand } from './commands/verify-receipt.js';
import { CONFIRM_VIAS, ConfirmOptions, ConfirmVia } from './confirm-client.js';
import { CommandContext } from './context.js';
import { DcxError, messageOf, usageError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** Set by scripts/build-client.mjs in a bundled client, which has no package.json beside it. */
declare global {
  var DCX_CLIENT_VERSION: string | undefined;
}

function packageVersion(): string {
  if (globalThis.DCX_CLIENT_VERSION) return globalThis.DCX_CLIENT_VERSION;
  for (const relative of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'dcx' && pkg.version) return pkg.version;
    } catch {
      // try the next layout (dist/src/client or src/client)
    }
  }
  return '0.0.0';
}

/** The `dcx` command line. Commander never prints or exits by itself: `run` does both. */
export function buildProgram(ctx: CommandContext, env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('dcx')
    .description('Receive DCX deliveries: verify, save and confirm .dcx bundles')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (text) => ctx.out(text.replace(/\n$/, '')), writeErr: () => undefined, outputError: () => undefined })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      `
Exit codes: 0 confirmed (inbox: every item; verify-receipt: valid), 1 other failure, 2 usage,
            3 unusable bundle, 4 digest mismatch, 5 confirmation refused, 6 server unreachable,
            7 invalid receipt, 8 refused by the server (enrolment code unknown, expired or used;
            installation not enrolled, revoked, or not the recipient).
Environment: DCX_HOME (default ~/.config/dcx), DCX_ADMIN_TOKEN (publish), HTTPS_PROXY / HTTP_PROXY /
             NO_PROXY (every request), NODE_EXTRA_CA_CERTS (a private CA).`,
    );

  addDeliveryCommands(program, ctx);
  addRecipientCommands(program, ctx);
  addAgentCommands(program, ctx, env);
  addServerCommands(program, ctx, env);
  return program;
}

/** The commands that take a delivery: fetch, open, inspect. */
function addDeliveryCommands(program: Command, ctx: CommandContext): void {
  const fetch = program
    .command('fetch')
    .description('download a bundle sealed for this client, save its content, confirm the delivery (requests signed where enrolled)')
    .argument('<url>', 'bundle URL, or a personal link (<server>/api/inbox/<delivery-id>/bundle)')
    .option('-o, --out <dir>', 'directory to save the content in', '.')
    .option('--access-token <token>', 'access token for a content published with token access')
    .option('--json', 'print one JSON object on stdout');
  withConfirmOptions(fetch).action(async (url: string, options: { out: string; accessToken?: string; json?: boolean } & ConfirmFlags) => {
    await fetchCommand(url, { ...options, confirm: confirmOptions(options) }, ctx);
  });

  const open = program
    .command('open')
    .description('verify a .dcx file (e.g. saved by a browser), save its content, confirm the delivery')
    .argument('<file>', '.dcx bundle')
    .option('-o, --out <dir>', 'directory to save the content in', '.')
    .option('--trust', "accept and pin the bundle's server when it is not pinned yet")
    .option('--json', 'print one JSON object on stdout');
  withConfirmOptions(open).action(async (file: string, options: { out: string; trust?: boolean; json?: boolean } & ConfirmFlags) => {
    await openCommand(file, { ...options, confirm: confirmOptions(options) }, ctx);
  });

  const retry = program
    .command('retry')
    .description('send the confirmations kept in the outbox (DCX_HOME/outbox) that are due; store their receipts')
    .option('--all', 'send every kept confirmation now, due or not')
    .option('--json', 'print one JSON object on stdout');
  withConfirmOptions(retry).action(async (options: { all?: boolean; json?: boolean } & ConfirmFlags) => {
    await retryCommand({ ...options, confirm: confirmOptions(options) }, ctx);
  });

  program
    .command('inspect')
    .description('verify a .dcx file and show what it holds; saves and confirms nothing')
    .argument('<file>', '.dcx bundle')
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, options: { json?: boolean }) => {
      await inspectCommand(file, options, ctx);
    });
}

/** The largest --confirm-timeout, in seconds. */
const MAX_CONFIRM_TIMEOUT_S = 600;

interface ConfirmFlags {
  via: ConfirmVia;
  confirmTimeout?: number;
}

/** --via and --confirm-timeout: how a command's confirmations travel (PROTOCOL.md §4.1). */
function withConfirmOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--via <how>', 'confirm over the TCP port, falling back to HTTPS when it cannot be reached (auto), or only one')
        .choices(CONFIRM_VIAS)
        .default('auto'),
    )
    .addOption(
      new Option('--confirm-timeout <seconds>', 'how long to wait for the TCP confirmation port before HTTPS (default 3)').argParser(
        parseConfirmTimeout,
      ),
    );
}

function parseConfirmTimeout(text: string): number {
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || seconds <= 0 || seconds > MAX_CONFIRM_TIMEOUT_S)
    throw usageError(
      `--confirm-timeout must be a number of seconds above 0 and at most ${MAX_CONFIRM_TIMEOUT_S}, not ${JSON.stringify(text)}`,
    );
  return seconds;
}

function confirmOptions(flags: ConfirmFlags): ConfirmOptions {
  return { via: flags.via, ...(flags.confirmTimeout === undefined ? {} : { connectMs: flags.confirmTimeout * 1000 }) };
}

/** The commands of a named recipient: enrol, inbox. */
function addRecipientCommands(program: Command, ctx: CommandContext): void {
  program
    .command('enrol')
    .description("become a named recipient of a server: pin its key (as trust), enrol this installation's key with a code")
    .argument('<server-url>', "the server's base URL")
    .requiredOption('--code <code>', 'the enrolment code the server operator gave you (XXXX-XXXX, single use)')
    .option('--name <name>', 'your name, as the operator will see it')
    .option('--json', 'print one JSON object on stdout')
    .action(async (url: string, options: { code: string; name?: string; json?: boolean }) => {
      await enrolCommand(url, options, ctx);
    });

  const inbox = program
    .command('inbox')
    .description('fetch, save and confirm every delivery addressed to you at a server you are enrolled at (one pass)')
    .argument('<server-url>', "the server's base URL")
    .requiredOption('-o, --out <dir>', 'directory to save the contents in')
    .option('--json', 'print one JSON object on stdout');
  withConfirmOptions(inbox).action(async (url: string, options: { out: string; json?: boolean } & ConfirmFlags) => {
    await inboxCommand(url, { ...options, confirm: confirmOptions(options) }, ctx);
  });
}

/** The resident agent and the desktop: agent, status, register (docs/design/resident-agent.md §4). */
function addAgentCommands(program: Command, ctx: CommandContext, env: NodeJS.ProcessEnv): void {
  const agent = program
    .command('agent')
    .description('stay running: receive, save and confirm every delivery addressed to you, as it arrives (outbound HTTPS only)')
    .argument('[server-url]', 'the server you are enrolled at (may be left out when there is only one)')
    .option('-o, --out <dir>', 'directory to save the contents in (required, also with --install)')
    .option('--lease-seconds <n>', 'how long the server keeps a delivery for this agent before offering it again (10-3600)')
    .option('--install', 'install the agent as a service that starts at login (a systemd user unit; prints the macOS and Windows recipes)')
    .option('--uninstall', 'stop and remove the service')
    .option('--no-enable', 'with --install / --uninstall: write or remove the unit only; do not run systemctl');
  withConfirmOptions(agent).action(async (url: string | undefined, options: Omit<AgentCommandOptions, 'confirm'> & ConfirmFlags) => {
    await agentCommand(url, { ...options, confirm: confirmOptions(options) }, ctx, env);
  });

  program
    .command('status')
    .description("what this installation's agent holds: running or not, last contact, confirmations waiting in the outbox")
    .option('--json', 'print one JSON object on stdout')
    .action(async (options: { json?: boolean }) => {
      await statusCommand(options, ctx, () => pendingConfirmations(ctx.home));
    });

  program
    .command('register')
    .description('make `dcx open` the desktop handler of .dcx bundles and .dcxp plug-in data (Linux: XDG; see README for macOS, Windows)')
    .option('-o, --out <dir>', 'where opened bundles save their content (default ~/Downloads)')
    .option('--uninstall', 'remove the association')
    .action(async (options: { out?: string; uninstall?: boolean }) => {
      await registerCommand(options, ctx, env);
    });
}

/** The commands that talk to a server or check its receipts: trust, publish, verify-receipt. */
function addServerCommands(program: Command, ctx: CommandContext, env: NodeJS.ProcessEnv): void {
  program
    .command('trust')
    .description("pin a server's public key (from <url>/.well-known/dcx) and show its fingerprint")
    .argument('<server-url>', "the server's base URL")
    .option('--json', 'print one JSON object on stdout')
    .action(async (url: string, options: { json?: boolean }) => {
      await trustCommand(url, options, ctx);
    });

  program
    .command('publish')
    .description('upload a content (admin; token in DCX_ADMIN_TOKEN) and print its bundle URL')
    .argument('<file>', 'file to publish')
    .requiredOption('--server <url>', "the server's base URL")
    .addOption(new Option('--access <mode>', 'who may fetch it').choices(['public', 'token']).default('public'))
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string, options: { server: string; access: 'public' | 'token'; json?: boolean }) => {
      await publishCommand(file, options, ctx, env);
    });

  program
    .command('verify-receipt')
    .description('check delivery receipts offline against the pinned server keys (exit 0 valid, 7 invalid)')
    .argument(
      '[file]',
      'a receipt kept by the client (DCX_HOME/receipts/<id>.receipt), or the JSON of GET /api/deliveries/<id>/receipt or ' +
        '`dcx fetch --json`',
    )
    .option('--pack <evidence.zip>', "every receipt of a distribution's evidence pack (GET /api/distributions/<id>/evidence.zip)")
    .option('--server <url>', 'check against this pinned server only')
    .option('--json', 'print one JSON object on stdout')
    .action(async (file: string | undefined, options: { pack?: string; server?: string; json?: boolean }) => {
      if (file !== undefined && options.pack !== undefined) throw usageError('give a receipt file or --pack <evidence.zip>, not both');
      if (file === undefined && options.pack === undefined) throw usageError('give a receipt file, or --pack <evidence.zip>');
      if (options.pack !== undefined) await verifyPackCommand(options.pack, options, ctx);
      else await verifyReceiptCommand(file!, options, ctx);
    });
}

/** Runs one command line; returns the exit code and the one-line error message, if any. */
export async function run(
  argv: string[],
  ctx: CommandContext,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: ExitCode; error?: string }> {
  const program = buildProgram(ctx, env);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { code: ExitCode.Confirmed };
  } catch (error) {
    return failure(error);
  }
}

function failure(error: unknown): { code: ExitCode; error?: string } {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return { code: ExitCode.Confirmed };
    if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') {
      return { code: ExitCode.Usage, error: 'missing command; run `dcx --help`' };
    }
    return {
      code: ExitCode.Usage,
      error: `${messageOf(error)
        .replace(/^error:\s*/, '')
        .replace(/\.$/, '')}; run \`dcx --help\``,
    };
  }
  if (error instanceof DcxError) return { code: error.exitCode, error: messageOf(error) };
  if (error instanceof ProtocolError) return { code: ExitCode.UnusableBundle, error: messageOf(error) };
  return { code: ExitCode.Failure, error: messageOf(error) };
}
