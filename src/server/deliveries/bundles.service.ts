import { BadRequestException, Injectable, InternalServerErrorException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { finished } from 'node:stream/promises';
import { BUNDLE_EXTENSION, BUNDLE_MEDIA_TYPE, PUBLIC_KEY_SIZE } from '../../protocol/constants.js';
import { ContentStorage } from '../contents/content-storage.js';
import { ContentsService } from '../contents/contents.service.js';
import { BundleArchiver } from './bundle-archiver.js';
import { DeliveriesService } from './deliveries.service.js';

export interface BundleRequest {
  contentId: string;
  accessToken: string | undefined;
  /** DCX-Client-Key header as sent: base64url of the raw X25519 public key. */
  clientKeyHeader: string | undefined;
  requesterAddress: string;
}

/** [87] Answers a bundle request: issues the delivery, then streams the .dcx and records how it ended. */
@Injectable()
export class BundlesService {
  private readonly logger = new Logger(BundlesService.name);

  constructor(
    private readonly contents: ContentsService,
    private readonly storage: ContentStorage,
    private readonly deliveries: DeliveriesService,
    private readonly archiver: BundleArchiver,
  ) {}

  async send(request: BundleRequest, res: Response): Promise<void> {
    const clientKey = parseClientKey(request.clientKeyHeader);
    const content = await this.contents.findDeliverable(request.contentId, request.accessToken);
    // Open the content before issuing, so a missing file is an error, not a delivery that can never be sent.
    if (!(await this.storage.exists(content.storageKey))) {
      throw new InternalServerErrorException(`the stored file of content ${content.id} is missing`);
    }
    const source = this.storage.openRead(content.storageKey);
    const { delivery, pluginData } = await this.deliveries.issue(content, { address: request.requesterAddress, clientKey });

    res.attachment(`${content.name}${BUNDLE_EXTENSION}`);
    res.type(BUNDLE_MEDIA_TYPE);
    res.setHeader('DCX-Delivery-Id', delivery.id);
    res.setHeader('Cache-Control', 'no-store');

    const archive = this.archiver.create(pluginData, { name: content.name, source, date: content.createdAt });
    // pipe + finished rather than pipeline: pipeline would destroy the response's keep-alive socket.
    archive.on('error', (error) => res.destroy(error));
    archive.pipe(res);
    try {
      await finished(res);
      await this.deliveries.markSent(delivery.id, archive.pointer());
    } catch (error) {
      archive.destroy();
      source.destroy();
      const reason = res.destroyed && !res.writableFinished ? 'client disconnected before the last byte' : (error as Error).message;
      this.logger.warn(`delivery ${delivery.id} failed: ${reason}`);
      await this.deliveries.markFailed(delivery.id, archive.pointer(), reason);
    }
  }
}

function parseClientKey(header: string | undefined): Buffer | null {
  if (header === undefined || header === '') return null;
  const key = /^[A-Za-z0-9_-]+$/.test(header) ? Buffer.from(header, 'base64url') : Buffer.alloc(0);
  if (key.length !== PUBLIC_KEY_SIZE) {
    throw new BadRequestException(`DCX-Client-Key must be the base64url of a ${PUBLIC_KEY_SIZE}-byte X25519 public key`);
  }
  return key;
}
