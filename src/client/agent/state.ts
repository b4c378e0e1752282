// DCX_HOME/agent.json: what the running agent last did, for `dcx status` (and a person reading it).
import { DcxError, errnoCode, messageOf } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { DcxHome, readTextIfPresent, writePrivateFileAtomic } from '../home.js';

export interface LastDelivery {
  deliveryId: string;
  name: string;
  /** Where the content is, in --out. */
  paths: string[];
  /** confirmed, already confirmed, already saved + confirmed, or what went wrong. */
  status: string;
  at: string;
}

/** The contract's `{pid, server, startedAt, lastContactAt, connected, lastDelivery}`, plus where it saves. */
export interface AgentState {
  pid: number;
  server: string;
  out: string;
  startedAt: string;
  /** The last time the server answered anything (a stream event, a heartbeat, an answer to next). */
  lastContactAt: string | null;
  connected: boolean;
  lastDelivery: LastDelivery | null;
  /** Set when the agent stopped by itself (signal, fatal error): the pid is then no longer ours. */
  stoppedAt?: string;
  lastError?: string;
}

/** Reads and writes agent.json; every write is whole (temp file + rename), so a reader never sees half. */
export class AgentStateFile {
  readonly path: string;

  constructor(private readonly home: DcxHome) {
    this.path = home.agentStatePath;
  }

  async read(): Promise<AgentState | null> {
    const text = await readTextIfPresent(this.path, 'the agent state');
    if (text === null) return null;
    try {
      const state = JSON.parse(text) as AgentState;
      if (typeof state.pid !== 'number' || typeof state.server !== 'string') throw new Error('no pid or server');
      return state;
    } catch (error) {
      throw new DcxError(ExitCode.Failure, `the agent state ${this.path} is unusable: ${messageOf(error)}`);
    }
  }

  async write(state: AgentState): Promise<void> {
    await this.home.ensureDir();
    await writePrivateFileAtomic(this.path, JSON.stringify(state, null, 2) + '\n');
  }
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, but belongs to another user.
    return errnoCode(error) === 'EPERM';
  }
}
