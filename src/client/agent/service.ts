// `dcx agent --install`: the agent as a service that starts at login. On Linux a systemd user unit is
// written (and enabled when systemctl is there); for macOS (launchd) and Windows the recipe is printed,
// since neither can be set up from here without asking the user's OS for rights.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool, toolLine, xdgConfigHome } from './host-tools.js';

export const UNIT_NAME = 'dcx-agent.service';
export const LAUNCHD_LABEL = 'org.dcx.agent';
/** systemd restarts a failed agent after this long (the agent's own backoff handles a server that is away). */
const RESTART_SEC = 10;
/** The agent's exit on SIGTERM / SIGINT (128 + signal): its normal way out, not a failure. */
const SIGNAL_EXITS = '130 143';
/** Usage (2) and a refused installation (8): restarting would fail the same way. */
const FINAL_EXITS = '2 8';

export interface ServiceSpec {
  /** The command that runs the agent: [executable, …arguments]. */
  command: string[];
  dcxHome: string;
  server: string;
  out: string;
}

/** One ExecStart= word: quoted when it holds anything systemd would split or expand. */
function systemdWord(word: string): string {
  if (/^[\w@%+=:,./-]+$/.test(word) && !word.includes('%') && !word.includes('$')) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

export function systemdUnit(spec: ServiceSpec): string {
  return [
    '[Unit]',
    `Description=DCX resident agent (deliveries from ${spec.server} into ${spec.out})`,
    'Documentation=https://github.com/dcx/dcx#resident-agent',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${spec.command.map(systemdWord).join(' ')}`,
    `Environment=${systemdWord(`DCX_HOME=${spec.dcxHome}`)}`,
    'Restart=on-failure',
    `RestartSec=${RESTART_SEC}`,
    `SuccessExitStatus=${SIGNAL_EXITS}`,
    `RestartPreventExitStatus=${FINAL_EXITS}`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

const xml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function launchdPlist(spec: ServiceSpec): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key><string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...spec.command.map((word) => `    <string>${xml(word)}</string>`),
    '  </array>',
    '  <key>EnvironmentVariables</key>',
    `  <dict><key>DCX_HOME</key><string>${xml(spec.dcxHome)}</string></dict>`,
    '  <key>RunAtLoad</key><true/>',
    '  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>',
    `  <key>StandardErrorPath</key><string>${xml(join(spec.dcxHome, 'agent.log'))}</string>`,
    `  <key>StandardOutPath</key><string>${xml(join(spec.dcxHome, 'agent.log'))}</string>`,
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

/** A Windows command line word (CommandLineToArgvW rules, enough for paths). */
const windowsWord = (word: string) => (/[\s"]/.test(word) ? `"${word.replace(/"/g, '\\"')}"` : word);

export function windowsRecipe(spec: ServiceSpec): string {
  const command = spec.command.map(windowsWord).join(' ');
  return [
    'Windows: run it at logon with Task Scheduler (as you, no administrator rights needed):',
    `  setx DCX_HOME ${windowsWord(spec.dcxHome)}`,
    `  schtasks /Create /TN "DCX agent" /SC ONLOGON /RL LIMITED /F /TR "${command.replace(/"/g, '\\"')}"`,
    '  remove: schtasks /Delete /TN "DCX agent" /F',
    '  (as a service for every user: a service wrapper such as WinSW or NSSM runs the same command;',
    '   sc.exe alone cannot, since dcx is not a Windows service binary)',
  ].join('\n');
}

export function launchdRecipe(spec: ServiceSpec): string {
  const path = `~/Library/LaunchAgents/${LAUNCHD_LABEL}.plist`;
  return [
    `macOS: save this as ${path}, then: launchctl bootstrap gui/$(id -u) ${path}`,
    `  (remove: launchctl bootout gui/$(id -u)/${LAUNCHD_LABEL} && rm ${path})`,
    ...launchdPlist(spec)
      .trimEnd()
      .split('\n')
      .map((line) => `  ${line}`),
  ].join('\n');
}

export function unitPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(xdgConfigHome(env), 'systemd', 'user', UNIT_NAME);
}

export interface InstallReport {
  unitPath: string;
  lines: string[];
}

/** Writes the systemd user unit; reloads and enables it (now) unless `enable` is false or systemctl is missing. */
export async function installService(spec: ServiceSpec, enable: boolean, env: NodeJS.ProcessEnv = process.env): Promise<InstallReport> {
  const path = unitPath(env);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, systemdUnit(spec), { mode: 0o644 });
  const lines = [`wrote the systemd user unit ${path}`];
  if (!enable) {
    lines.push('not enabled (--no-enable): run `systemctl --user daemon-reload && systemctl --user enable --now dcx-agent`');
  } else {
    for (const args of [
      ['--user', 'daemon-reload'],
      ['--user', 'enable', '--now', UNIT_NAME],
    ]) {
      const outcome = await runTool('systemctl', args, env);
      lines.push(toolLine('systemctl', args, outcome));
      if (!outcome.ran || !outcome.ok) break;
    }
  }
  return { unitPath: path, lines };
}

/** Stops and disables the unit (when systemctl is there and `enable` allows), then removes its file. */
export async function uninstallService(enable: boolean, env: NodeJS.ProcessEnv = process.env): Promise<InstallReport> {
  const path = unitPath(env);
  const lines: string[] = [];
  if (enable) {
    const args = ['--user', 'disable', '--now', UNIT_NAME];
    lines.push(toolLine('systemctl', args, await runTool('systemctl', args, env)));
  }
  await rm(path, { force: true });
  lines.push(`removed the systemd user unit ${path}`);
  if (enable) {
    const args = ['--user', 'daemon-reload'];
    lines.push(toolLine('systemctl', args, await runTool('systemctl', args, env)));
  }
  return { unitPath: path, lines };
}
