import { processAlive, AgentStateFile, AgentState } from '../agent/state.js';
import { CommandContext } from '../context.js';
import { DcxHome } from '../home.js';

export interface StatusOptions {
  json?: boolean;
}

/** One confirmation waiting in the outbox, as `dcx status` shows it. */
export interface PendingConfirmation {
  deliveryId: string;
  attempts?: number;
  nextAttemptAt?: string | null;
  lastError?: string | null;
}

export interface StatusReport {
  agent: (AgentState & { running: boolean }) | null;
  outbox: PendingConfirmation[];
}

/**
 * `dcx status [--json]`: what the agent of this installation (DCX_HOME) last did, whether it still runs
 * (its pid is alive and it has not recorded a stop), and the confirmations waiting in the outbox.
 */
export async function statusCommand(
  options: StatusOptions,
  ctx: CommandContext,
  pendingConfirmations: () => Promise<PendingConfirmation[]>,
): Promise<StatusReport> {
  const state = await new AgentStateFile(ctx.home).read();
  const agent = state ? { ...state, running: !state.stoppedAt && processAlive(state.pid) } : null;
  const report: StatusReport = { agent, outbox: await pendingConfirmations() };
  ctx.out(options.json ? JSON.stringify(report) : statusText(report));
  return report;
}

function statusText({ agent, outbox }: StatusReport): string {
  const lines: string[] = [];
  if (!agent) lines.push('agent: never ran in this installation (start it: dcx agent --out <dir>)');
  else {
    const since = agent.running
      ? `running (pid ${agent.pid}) since ${agent.startedAt}`
      : `not running (last pid ${agent.pid}${agent.stoppedAt ? `, stopped ${agent.stoppedAt}` : ', gone'})`;
    lines.push(`agent: ${since}`);
    lines.push(`  server          ${agent.server}${agent.running ? (agent.connected ? ' (connected)' : ' (not connected)') : ''}`);
    lines.push(`  saves into      ${agent.out}`);
    lines.push(`  last contact    ${agent.lastContactAt ?? 'never'}`);
    const last = agent.lastDelivery;
    lines.push(`  last delivery   ${last ? `${last.name} (${last.status}, ${last.at})` : 'none yet'}`);
    if (agent.lastError) lines.push(`  last error      ${agent.lastError}`);
  }
  if (outbox.length === 0) lines.push('outbox: empty (every confirmation sent)');
  else {
    lines.push(`outbox: ${outbox.length} confirmation${outbox.length === 1 ? '' : 's'} waiting to be sent (\`dcx retry\` sends them now)`);
    for (const entry of outbox) {
      const detail = [
        entry.attempts ? `${entry.attempts} attempts` : null,
        entry.lastError ? `last error: ${entry.lastError}` : null,
        entry.nextAttemptAt ? `next ${entry.nextAttemptAt}` : null,
      ].filter(Boolean);
      lines.push(`  ${entry.deliveryId}${detail.length ? ` (${detail.join('; ')})` : ''}`);
    }
  }
  return lines.join('\n');
}

/** The outbox's entries (DCX_HOME/outbox), as `dcx status` shows them. */
export async function pendingConfirmations(home: DcxHome): Promise<PendingConfirmation[]> {
  return (await home.outbox().list()).map(({ deliveryId, attempts, nextAttemptAt, lastError }) => ({
    deliveryId,
    attempts,
    nextAttemptAt,
    lastError,
  }));
}
