// The resident agent [77] (seeds 002, 003): holds the push-notice stream, drains the inbox with
// "acquire next with deletion", keeps every confirmation in the outbox until its receipt is stored.
// docs/design/resident-agent.md §4 is the contract.
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Answer, AnswerStatus, decodeAnswer } from '../../protocol/answer.js';
import { Frame, FrameParser } from '../../protocol/frame.js';
import { DeliveryResult } from '../accept-bundle.js';
import { ConfirmOutcome, ConfirmRequest } from '../confirm-client.js';
import { DcxError, messageOf, unreachable } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { DcxHome } from '../home.js';
import { RequestSigner } from '../signed-request.js';
import { Backoff, reconnectDelay } from './backoff.js';
import { holdEventStream, StreamEvent } from './event-stream.js';
import { inboxNext, LeasedItem, NextAnswer } from './inbox-next.js';
import { AgentState, AgentStateFile, LastDelivery } from './state.js';

/**
 * Test hook, read here only: when set to a path, the agent stops after a delivery's files are saved and
 * its confirmation is in the outbox, just before the ack goes out, until that path exists. It lets a test
 * kill or suspend the agent at exactly that point.
 */
export const PAUSE_BEFORE_ACK_ENV = 'DCX_AGENT_TEST_PAUSE_BEFORE_ACK';
const PAUSE_POLL_MS = 100;
/** How often due outbox entries are looked for while the agent runs (besides at start and each reconnect). */
export const OUTBOX_CHECK_MS = 30_000;

/** What the agent needs of the outbox (src/client/outbox.ts, `home.outbox()`). */
export interface AgentOutbox {
  list(): Promise<{ deliveryId: string; nextAttemptAt?: string | null }[]>;
  /** Sends a kept confirmation (TCP, then HTTPS); saves the receipt and removes the entry. */
  flush(deliveryId: string): Promise<ConfirmOutcome>;
}

/**
 * The parts the agent is put together from: real ones in wiring.ts, fakes in tests. `pull` saves and
 * verifies the files, writes the outbox entry, then calls `confirmWith`; it removes the entry and stores the
 * receipt once that returns, keeps the entry when it fails with exit 6 (`isKept` tells), drops it otherwise.
 */
export interface AgentDeps {
  home: DcxHome;
  signer: RequestSigner;
  outbox: AgentOutbox;
  checkAnswer(answer: Answer, request: ConfirmRequest): ConfirmOutcome;
  confirmationFrame(request: ConfirmRequest): Buffer;
  pull(url: URL, confirmWith: (request: ConfirmRequest) => Promise<ConfirmOutcome>): Promise<DeliveryResult>;
  /** Whether a failure of `pull` left the confirmation in the outbox. */
  isKept(error: unknown): boolean;
}

export interface AgentOptions {
  /** The enrolled server's origin. */
  origin: string;
  out: string;
  leaseSeconds?: number;
  /** One line per delivery (stdout). */
  log: (line: string) => void;
  /** Connection state, outbox retries (stderr). */
  notice: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  idleTimeoutMs?: number;
}

export class Agent {
  private readonly stopping = new AbortController();
  private readonly stateFile: AgentStateFile;
  private state: AgentState;
  private drainWanted = false;
  private draining: Promise<void> | null = null;
  private fatal: DcxError | null = null;

  constructor(
    private readonly deps: AgentDeps,
    private readonly options: AgentOptions,
  ) {
    this.stateFile = new AgentStateFile(deps.home);
    this.state = {
      pid: process.pid,
      server: options.origin,
      out: options.out,
      startedAt: new Date().toISOString(),
      lastContactAt: null,
      connected: false,
      lastDelivery: null,
    };
  }

  /** Runs until `stop()` (or a refusal of this installation, thrown as exit 8). */
  async run(): Promise<void> {
    await this.saveState();
    const outboxTimer = setInterval(() => void this.flushOutbox(), OUTBOX_CHECK_MS);
    try {
      await this.flushOutbox();
      this.requestDrain();
      await this.holdStream();
    } finally {
      clearInterval(outboxTimer);
      this.stopping.abort();
      await this.draining;
      this.state = { ...this.state, connected: false, stoppedAt: new Date().toISOString() };
      await this.saveState();
    }
    if (this.fatal) throw this.fatal;
  }

  stop(): void {
    this.stopping.abort();
  }

  /**
   * For a signal handler that exits right after it: records the stop synchronously (temp + rename, as
   * writePrivateFileAtomic does), since no await runs once the process is exiting.
   */
  recordStopSync(): void {
    const state = { ...this.state, connected: false, stoppedAt: new Date().toISOString() };
    const temp = `${this.stateFile.path}.${process.pid}.stop.tmp`;
    try {
      writeFileSync(temp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
      renameSync(temp, this.stateFile.path);
    } catch {
      // exiting anyway: `dcx status` then sees a pid that is no longer alive
    }
  }

  private get stopped(): boolean {
    return this.stopping.signal.aborted;
  }

  /** The event stream, held and re-opened with backoff until the agent stops. */
  private async holdStream(): Promise<void> {
    const backoff = new Backoff();
    while (!this.stopped) {
      let delay: number;
      try {
        const end = await holdEventStream(this.deps.signer, this.options.origin, {
          signal: this.stopping.signal,
          idleTimeoutMs: this.options.idleTimeoutMs,
          onOpen: () => {
            backoff.succeeded();
            this.options.notice(`connected to ${this.options.origin}`);
            void this.contact({ connected: true });
            // Anything that arrived while the stream was down, and confirmations that waited for the server.
            void this.flushOutbox();
            this.requestDrain();
          },
          onEvent: (event) => this.onEvent(event, backoff),
        });
        if (end.reason === 'aborted') break;
        if (end.reason === 'bye' && end.why === 'replaced') {
          // Another process of this installation holds the stream now: back off as after a failure, so two
          // agents of one DCX_HOME do not take the stream from each other in a loop.
          delay = backoff.next();
          this.options.notice(`another process of this installation took the event stream; reconnecting in ${seconds(delay)}`);
        } else if (end.reason === 'bye') {
          // The server going away on purpose: wait what it asks, spread with jitter, not doubled.
          delay = reconnectDelay(0, end.retryMs ?? backoff.base);
          this.options.notice(`the server said bye; reconnecting in ${seconds(delay)}`);
        } else {
          delay = backoff.next();
          this.options.notice(`the server closed the event stream; reconnecting in ${seconds(delay)}`);
        }
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof DcxError && error.exitCode === ExitCode.Refused) {
          this.fatal = error;
          break;
        }
        delay = backoff.next();
        this.options.notice(`${messageOf(error)}; reconnecting in ${seconds(delay)}`);
      }
      await this.contact({ connected: false }, false);
      await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }

  private onEvent(event: StreamEvent, backoff: Backoff): void {
    if (event.kind === 'retry') backoff.suggest(event.ms);
    if (event.kind === 'bye' && event.retryMs !== null) backoff.suggest(event.retryMs);
    if (event.kind === 'waiting') this.requestDrain();
    void this.contact({});
  }

  /** One drain at a time; a notice that arrives meanwhile makes it go round once more. */
  private requestDrain(): void {
    this.drainWanted = true;
    if (this.draining || this.stopped) return;
    this.draining = (async () => {
      while (this.drainWanted && !this.stopped) {
        this.drainWanted = false;
        try {
          await this.drain();
        } catch (error) {
          if (this.stopped) break;
          if (error instanceof DcxError && error.exitCode === ExitCode.Refused) {
            this.fatal = error;
            this.stop();
            break;
          }
          // The next notice, or the next reconnect, tries again.
          this.options.notice(`cannot get the next delivery: ${messageOf(error)}`);
        }
      }
    })().finally(() => (this.draining = null));
  }

  /** `next` until nothing is waiting: each leased item delivered, and acked by the call that leases the following one. */
  private async drain(): Promise<void> {
    let answer = await this.next();
    while (answer.next && !this.stopped) {
      const following = await this.deliver(answer.next);
      if (following === 'stop') return;
      answer = following ?? (await this.next());
    }
  }

  private async next(ack?: { deliveryId: string; confirmation: Buffer }): Promise<NextAnswer> {
    const answer = await inboxNext(this.deps.signer, this.options.origin, { ack, leaseSeconds: this.options.leaseSeconds });
    await this.contact({});
    return answer;
  }

  /**
   * Pulls, saves and verifies one leased delivery; its confirmation goes into the outbox and then out as
   * the ack of the next `next` call, whose answer (the following lease) is returned. Null when no ack
   * went out (the delivery failed before it was confirmed); 'stop' when the server could not be reached.
   */
  private async deliver(item: LeasedItem): Promise<NextAnswer | null | 'stop'> {
    let following: NextAnswer | null = null;
    // Called once the files are saved, verified and the confirmation is in the outbox.
    const confirmWith = async (request: ConfirmRequest): Promise<ConfirmOutcome> => {
      await this.pauseBeforeAck(request.deliveryId);
      // A failure to reach the server stays exit 6, so that the outbox keeps the confirmation.
      following = await this.next({ deliveryId: request.deliveryId, confirmation: this.deps.confirmationFrame(request) });
      return this.checkAck(following, request);
    };

    let result: DeliveryResult;
    try {
      result = await this.deps.pull(new URL(item.bundleUrl, this.options.origin), confirmWith);
    } catch (error) {
      if (this.deps.isKept(error)) {
        this.record(item, [], 'kept in the outbox', `saved ${item.name}; its confirmation is kept in the outbox (${messageOf(error)})`);
        return following ?? 'stop';
      }
      if (error instanceof DcxError && error.exitCode === ExitCode.Refused) throw error;
      this.record(item, [], 'failed', `FAILED ${item.name} (delivery ${item.deliveryId}): ${messageOf(error)}`);
      if (error instanceof DcxError && error.exitCode === ExitCode.ServerUnreachable) return 'stop';
      return following;
    }
    const paths = result.files.map((f) => f.path);
    const already = result.files.every((f) => f.alreadySaved);
    const how = result.status === 'accepted' ? 'confirmed' : 'already confirmed';
    const status = already ? `already saved, ${how}` : how;
    this.record(item, paths, status, `${status} ${item.name}: ${paths.join(', ')} (delivery ${item.deliveryId})`);
    return following;
  }

  /** The ack's answer checked (receipt signed by the pinned key, for these digests); a refusal thrown (exit 5). */
  private checkAck(answer: NextAnswer, request: ConfirmRequest): ConfirmOutcome {
    const acked = answer.acked;
    if (!acked || acked.deliveryId !== request.deliveryId) {
      throw unreachable(`the server did not answer the ack of delivery ${request.deliveryId}`);
    }
    const decoded = answerOf(acked.answer);
    // Not decided yet: the outbox keeps it and sends it again later.
    if (decoded.status === AnswerStatus.TryLater) throw unreachable(`the server answered the ack of ${request.deliveryId}: try later`);
    return this.deps.checkAnswer(decoded, request);
  }

  /** Sends the confirmations the outbox holds (a crash before an ack, a server that was away). */
  private flushing: Promise<void> | null = null;
  private flushOutbox(): Promise<void> {
    this.flushing ??= (async () => {
      const now = Date.now();
      for (const entry of await this.deps.outbox.list().catch(() => [])) {
        if (this.stopped) break;
        if (entry.nextAttemptAt && Date.parse(entry.nextAttemptAt) > now) continue;
        try {
          const outcome = await this.deps.outbox.flush(entry.deliveryId);
          const how = outcome.status === 'accepted' ? 'confirmed' : 'already confirmed';
          this.options.log(`${new Date().toISOString()} ${how} delivery ${entry.deliveryId} (from the outbox)`);
          await this.contact({});
        } catch (error) {
          this.options.notice(`the confirmation of delivery ${entry.deliveryId} stays in the outbox: ${messageOf(error)}`);
        }
      }
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async pauseBeforeAck(deliveryId: string): Promise<void> {
    const path = (this.options.env ?? process.env)[PAUSE_BEFORE_ACK_ENV];
    if (!path) return;
    this.options.notice(`paused before the ack of delivery ${deliveryId} (until ${path} exists)`);
    while (!existsSync(path) && !this.stopped) await sleep(PAUSE_POLL_MS);
  }

  private record(item: LeasedItem, paths: string[], status: string, line: string): void {
    const lastDelivery: LastDelivery = { deliveryId: item.deliveryId, name: item.name, paths, status, at: new Date().toISOString() };
    this.options.log(`${lastDelivery.at} ${line}`);
    this.state = { ...this.state, lastDelivery };
    void this.saveState();
  }

  /** The server answered (or, with `contacted` false, the stream is gone): agent.json says so. */
  private async contact(change: Partial<AgentState>, contacted = true): Promise<void> {
    this.state = { ...this.state, ...change, ...(contacted ? { lastContactAt: new Date().toISOString() } : {}) };
    await this.saveState();
  }

  private writing: Promise<void> = Promise.resolve();
  /** Writes are queued: two renames racing could leave the older state last. */
  private saveState(): Promise<void> {
    this.writing = this.writing.then(() => this.stateFile.write(this.state)).catch(() => undefined);
    return this.writing;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The answer frame an ack's answer carries (base64 of one whole frame, as on the TCP port). */
export function answerOf(bytes: Buffer): Answer {
  const frames: Frame[] = [];
  try {
    new FrameParser().parse(bytes, (frame) => frames.push(frame));
    if (frames.length !== 1) throw new Error(`${frames.length} frames`);
    return decodeAnswer(frames[0]);
  } catch (error) {
    throw new DcxError(ExitCode.Failure, `the server's answer to the ack is not one answer frame: ${messageOf(error)}`, { cause: error });
  }
}
