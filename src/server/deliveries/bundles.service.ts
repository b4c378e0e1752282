import { BadRequestException, GoneException, Injectable, InternalServerErrorException, Logger } from '@nestjs/common';
import { create as contentDisposition } from 'content-disposition';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import parseRange from 'range-parser';
import { BUNDLE_EXTENSION, BUNDLE_MEDIA_TYPE, PUBLIC_KEY_SIZE } from '../../protocol/constants.js';
import { ContentStorage } from '../contents/content-storage.js';
import { Content } from '../contents/content.entity.js';
import { ContentsService } from '../contents/contents.service.js';
import { TickBatch } from '../common/tick-batch.js';
import { BundleWriter, ConnectionClosedError } from './bundle-writer.js';
import { DeliveriesService, SealedDelivery } from './deliveries.service.js';

export interface BundleRequest {
  contentId: string;
  accessToken: string | undefined;
  /** DCX-Client-Key header as sent: base64url of the raw X25519 public key. */
  clientKeyHeader: string | undefined;
  requesterAddress: string;
}

interface ByteRange {
  start: number;
  end: number;
}

/** [87] Answers bundle requests: a new delivery per content request, the same bytes again per delivery URL. */
@Injectable()
export class BundlesService {
  private readonly logger = new Logger(BundlesService.name);
  /** Stored files checked by concurrent requests: one stat per file per turn of the event loop. */
  private readonly storedFiles = new TickBatch<string, boolean>((keys) => Promise.all(keys.map((key) => this.storage.exists(key))));

  constructor(
    private readonly contents: ContentsService,
    private readonly storage: ContentStorage,
    private readonly deliveries: DeliveriesService,
    private readonly writer: BundleWriter,
  ) {}

  /** GET /api/contents/:id/bundle: issues a delivery and sends its whole bundle. */
  async sendNew(request: BundleRequest, res: ServerResponse): Promise<void> {
    const clientKey = parseClientKey(request.clientKeyHeader);
    const content = await this.deliverable(request.contentId, request.accessToken);
    const delivery = await this.deliveries.issue(content, { address: request.requesterAddress, clientKey });
    await this.send(delivery.id, delivery.pluginData, content, null, res);
  }

  /** GET /api/deliveries/:id/bundle: the same delivery's bundle again, whole or a byte range; issues nothing. */
  async sendExisting(deliveryId: string, accessToken: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { delivery, content } = await this.existing(deliveryId, accessToken);
    await this.send(delivery.id, delivery.pluginData, content, req.headers, res);
  }

  /**
   * HEAD /api/contents/:id/bundle: who may fetch, and what, checked as for GET, without issuing a delivery
   * (its length depends on the plug-in data a GET issues, so there is no Content-Length).
   */
  async headNew(contentId: string, accessToken: string | undefined, res: ServerResponse): Promise<void> {
    const content = await this.deliverable(contentId, accessToken);
    bundleHeaders(res, content, null);
    res.end();
  }

  /** HEAD /api/deliveries/:id/bundle: the whole bundle's headers (a Range is ignored); streams nothing, marks nothing. */
  async headExisting(deliveryId: string, accessToken: string | undefined, res: ServerResponse): Promise<void> {
    const { delivery, content } = await this.existing(deliveryId, accessToken);
    bundleHeaders(res, content, delivery.id);
    res.setHeader('Content-Length', String(this.writer.layout(delivery.pluginData, content).size));
    res.end();
  }

  private async existing(deliveryId: string, accessToken: string | undefined): Promise<{ delivery: SealedDelivery; content: Content }> {
    const delivery = await this.deliveries.findWithPluginData(deliveryId);
    if (delivery.status === 'expired') {
      throw new GoneException(
        `delivery ${deliveryId} expired at ${delivery.expiresAt.toISOString()}; fetch the content again, or ask for it to be re-issued`,
      );
    }
    return { delivery, content: await this.deliverable(delivery.contentId, accessToken) };
  }

  /**
   * GET /api/inbox/:id/bundle: a recipient's delivery, sealed to the installation asking, whole or a byte range;
   * `location` is that personal link (its Content-Location).
   */
  async sendRecipient(
    delivery: SealedDelivery,
    content: Content,
    location: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    await this.ensureStored(content);
    await this.send(delivery.id, delivery.pluginData, content, req.headers, res, location);
  }

  /** HEAD /api/inbox/:id/bundle: the headers; without a seal yet (pending) there is no Content-Length, as for HEAD of a content. */
  async headRecipient(delivery: SealedDelivery | null, content: Content, location: string, res: ServerResponse): Promise<void> {
    await this.ensureStored(content);
    if (delivery) {
      bundleHeaders(res, content, delivery.id, location);
      res.setHeader('Content-Length', String(this.writer.layout(delivery.pluginData, content).size));
    } else {
      bundleHeaders(res, content, null);
    }
    res.end();
  }

  private async deliverable(contentId: string, accessToken: string | undefined): Promise<Content> {
    const content = await this.contents.findDeliverable(contentId, accessToken);
    await this.ensureStored(content);
    return content;
  }

  private async ensureStored(content: Content): Promise<void> {
    // Checked before issuing, so a lost file is an error, not a delivery that can never be sent
    // (a small file held in memory can be sent whatever became of the disk).
    if (!this.storage.holds(content.storageKey) && !(await this.storedFiles.get(content.storageKey))) {
      // Deleted meanwhile (on another replica, seen here within CONTENT_CACHE_TTL_MS) is a 404, not our fault.
      await this.contents.findLive(content.id);
      throw new InternalServerErrorException(`the stored file of content ${content.id} is missing`);
    }
  }

  /**
   * Writes the bundle to the Node response itself: the writer streams stored files with its own buffers and
   * back-pressure. Called once nothing can fail with an HTTP error: after the first byte, Nest cannot answer one.
   * @param rangeHeaders the request's headers when a Range may apply (a delivery's own URL), else null
   */
  private async send(
    deliveryId: string,
    pluginData: Buffer,
    content: Content,
    rangeHeaders: IncomingHttpHeaders | null,
    res: ServerResponse,
    location: string = deliveryLocation(deliveryId),
  ): Promise<void> {
    const layout = this.writer.layout(pluginData, content);
    bundleHeaders(res, content, deliveryId, location);

    const range = rangeHeaders ? requestedRange(rangeHeaders, layout.size, etagOf(deliveryId)) : null;
    if (range === 'unsatisfiable') {
      res.statusCode = 416;
      res.setHeader('Content-Range', `bytes */${layout.size}`);
      res.end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: layout.size - 1 };
    if (range) {
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${layout.size}`);
    }
    res.setHeader('Content-Length', String(end - start + 1));

    let bytes = 0;
    try {
      await this.writer.write(layout, start, end, res, (n) => (bytes += n));
      // "sent" means the last byte of the bundle left, whether in one response or the last of several.
      if (end === layout.size - 1) await this.deliveries.markSent(deliveryId, bytes);
    } catch (error) {
      const cutOff = error instanceof ConnectionClosedError || (res.destroyed && !res.writableFinished);
      if (!res.writableFinished) res.destroy();
      const reason = cutOff ? 'client disconnected before the last byte' : (error as Error).message;
      this.logger.warn(`delivery ${deliveryId} cut off after ${bytes} bytes: ${reason}`);
      await this.deliveries.markFailed(deliveryId, bytes, reason);
    }
  }
}

/** The headers of every bundle response; with a delivery, those that name it and make it resumable. */
function bundleHeaders(res: ServerResponse, content: Content, deliveryId: string | null, location = deliveryLocation(deliveryId)): void {
  res.setHeader('Content-Disposition', contentDisposition(`${content.name}${BUNDLE_EXTENSION}`));
  res.setHeader('Content-Type', BUNDLE_MEDIA_TYPE);
  res.setHeader('Cache-Control', 'private, no-store');
  if (deliveryId === null) return;
  res.setHeader('DCX-Delivery-Id', deliveryId);
  res.setHeader('Content-Location', location);
  res.setHeader('ETag', etagOf(deliveryId));
  res.setHeader('Accept-Ranges', 'bytes');
}

/** The anonymous link of a delivery's bundle. */
function deliveryLocation(deliveryId: string | null): string {
  return `/api/deliveries/${deliveryId}/bundle`;
}

/** A delivery's bundle is deterministic: its ID is a strong validator for If-Range. */
function etagOf(deliveryId: string): string {
  return `"${deliveryId}"`;
}

/** A single satisfiable byte range, or null for the whole body (no, malformed, multiple or stale If-Range ranges). */
function requestedRange(headers: IncomingHttpHeaders, size: number, etag: string): ByteRange | 'unsatisfiable' | null {
  if (!headers.range) return null;
  const ifRange = headers['if-range'];
  if (ifRange !== undefined && ifRange !== etag) return null;
  const ranges = parseRange(size, headers.range, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return null;
  return { start: ranges[0].start, end: ranges[0].end };
}

function parseClientKey(header: string | undefined): Buffer | null {
  if (header === undefined || header === '') return null;
  const key = /^[A-Za-z0-9_-]+$/.test(header) ? Buffer.from(header, 'base64url') : Buffer.alloc(0);
  if (key.length !== PUBLIC_KEY_SIZE) {
    throw new BadRequestException(`DCX-Client-Key must be the base64url of a ${PUBLIC_KEY_SIZE}-byte X25519 public key`);
  }
  return key;
}
