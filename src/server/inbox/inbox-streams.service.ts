import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Subscription } from 'rxjs';
import { AppConfig } from '../config/app-config.js';
import { DeliveryEventsBus, type RecordedEvent } from '../deliveries/delivery-events.bus.js';
import type { RecipientPrincipal } from '../recipients/request-auth.service.js';
import { byeEvent, heartbeatComment, retryField, waitingEvent, type ByeReason } from './inbox-events.js';
import { InboxRepository, type Listener, type NoticeScope } from './inbox.repository.js';

/**
 * A stream whose client reads slower than we write holds its unsent bytes in memory: past this much (hundreds of
 * heartbeats and notices, none of which a healthy client leaves unread) it is closed; the agent reconnects.
 */
export const MAX_UNSENT_BYTES = 64 * 1024;

const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // no-transform: no proxy may compress or buffer the stream; X-Accel-Buffering: nginx passes each event at once.
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
};

/** One open stream: nothing per connection beyond the response and whom it belongs to. */
interface EventStream extends Listener {
  res: ServerResponse;
}

/**
 * The push notices of `GET /api/inbox/events` (seed 003, docs/design/resident-agent.md §2). Built for many idle
 * streams on one server: one map of streams by installation, one heartbeat timer for all of them, and a notice
 * computed for every listening installation concerned by one statement (InboxRepository.waitingCounts), however
 * many there are. No per-stream timer, observable or log line (the access log writes its one line at close).
 *
 * Notices come from this process's committed audit-trail events (DeliveryEventsBus) and from the lease sweep;
 * `announce` is the seam where replicas would feed each other's (LISTEN/NOTIFY, another issue).
 */
@Injectable()
export class InboxStreamsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(InboxStreamsService.name);
  /** By installation fingerprint: one stream per installation. */
  private readonly streams = new Map<string, EventStream>();
  private heartbeat: NodeJS.Timeout | undefined;
  private subscription: Subscription | undefined;
  /** Scopes announced since the last flush: notices of one burst of events go out in one statement. */
  private pending: NoticeScope | null = null;
  private closing = false;

  constructor(
    private readonly config: AppConfig,
    private readonly inbox: InboxRepository,
    private readonly bus: DeliveryEventsBus,
  ) {}

  onModuleInit(): void {
    this.heartbeat = setInterval(() => this.beat(), this.config.inboxHeartbeatMs);
    this.heartbeat.unref();
    this.subscription = this.bus.events$.subscribe((event) => this.onEvent(event));
  }

  /** Shutdown: every stream gets `bye` and is ended, so that the HTTP server's close does not wait for them. */
  onModuleDestroy(): void {
    this.closing = true;
    clearInterval(this.heartbeat);
    this.subscription?.unsubscribe();
    for (const stream of [...this.streams.values()]) this.end(stream, 'shutdown');
  }

  /** How many streams are open (metrics, tests). */
  get size(): number {
    return this.streams.size;
  }

  /** Opens the stream of an authenticated installation; a stream it already had is closed with `bye`. */
  open(principal: RecipientPrincipal, req: IncomingMessage, res: ServerResponse): void {
    // An idle stream is the point: no socket timeout; Nagle off so each event leaves at once.
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    res.writeHead(200, STREAM_HEADERS);
    res.write(retryField(this.config.inboxReconnectMs));
    if (this.closing) {
      res.end(byeEvent(this.config.inboxReconnectMs, 'shutdown'));
      return;
    }
    const stream: EventStream = { res, recipientId: principal.recipientId, fingerprint: principal.fingerprint };
    const previous = this.streams.get(stream.fingerprint);
    if (previous) this.end(previous, 'replaced');
    this.streams.set(stream.fingerprint, stream);
    res.once('close', () => {
      if (this.streams.get(stream.fingerprint) === stream) this.streams.delete(stream.fingerprint);
    });
    this.notify([stream], { recipientIds: [stream.recipientId], distributionIds: [], deliveryIds: [] });
  }

  /**
   * Deliveries became waiting for the recipients in `scope`: every listening installation of them with anything
   * waiting gets a `waiting` notice. Announcements of the same tick are merged into one statement.
   */
  announce(scope: Partial<NoticeScope>): void {
    if (this.pending === null) {
      this.pending = { recipientIds: [], distributionIds: [], deliveryIds: [] };
      setImmediate(() => this.flush());
    }
    this.pending.recipientIds.push(...(scope.recipientIds ?? []));
    this.pending.distributionIds.push(...(scope.distributionIds ?? []));
    this.pending.deliveryIds.push(...(scope.deliveryIds ?? []));
  }

  private flush(): void {
    const scope = this.pending;
    this.pending = null;
    if (!scope || this.streams.size === 0) return;
    this.notify([...this.streams.values()], scope);
  }

  /** One statement for all the listeners; a failure costs a notice, which the agent's reconnect or next poll makes up. */
  private notify(listeners: EventStream[], scope: NoticeScope): void {
    this.inbox
      .waitingCounts(
        listeners.map(({ recipientId, fingerprint }) => ({ recipientId, fingerprint })),
        scope,
      )
      .then((counts) => {
        for (const { fingerprint, count } of counts) {
          const stream = this.streams.get(fingerprint);
          if (stream) this.write(stream, waitingEvent(count));
        }
      })
      .catch((error: unknown) => this.logger.warn(`inbox notices not sent: ${(error as Error).message}`));
  }

  /** What of the audit trail makes a delivery waiting: a distribution created, a re-send (its new delivery). */
  private onEvent(event: RecordedEvent): void {
    const distributionId = event.detail?.distributionId;
    if (event.type === 'distributed' && typeof distributionId === 'string') this.announce({ distributionIds: [distributionId] });
    const fresh = event.detail?.newDeliveryId;
    if (event.type === 'reissued' && typeof fresh === 'string') this.announce({ deliveryIds: [fresh] });
  }

  /** One timer for every stream: the same bytes written to each. */
  private beat(): void {
    if (this.streams.size === 0) return;
    const comment = Buffer.from(heartbeatComment(new Date()));
    for (const stream of this.streams.values()) this.write(stream, comment);
  }

  private write(stream: EventStream, chunk: string | Buffer): void {
    if (stream.res.writableLength > MAX_UNSENT_BYTES) {
      this.streams.delete(stream.fingerprint);
      stream.res.destroy();
      return;
    }
    stream.res.write(chunk);
  }

  private end(stream: EventStream, reason: ByeReason): void {
    this.streams.delete(stream.fingerprint);
    stream.res.end(byeEvent(this.config.inboxReconnectMs, reason));
  }
}
