import { BadRequestException, Injectable } from '@nestjs/common';
import { ClientSealSecretSource, sealPluginDataBatch } from '../../protocol/plugin-data.js';
import { AppConfig } from '../config/app-config.js';
import { Content } from '../contents/content.entity.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import type { SealedDelivery } from './delivery.repository.js';
import { newDelivery, PendingDeliveryRef, PreparedDelivery, Requester } from './new-delivery.js';

/**
 * [871] + [88] The one place a delivery's row and sealed plug-in data are made: a link's new delivery, a
 * re-issue, and a distribution's pending delivery sealed on its first pull.
 */
@Injectable()
export class DeliverySealer {
  /** X25519 with a client's key, kept by ServerKeysService between that client's bundles. */
  private readonly clientSealSecret: ClientSealSecretSource = (keys, clientPublicKey) => this.keys.clientSealSecret(keys, clientPublicKey);

  constructor(
    private readonly config: AppConfig,
    private readonly keys: ServerKeysService,
  ) {}

  /** The row of a new delivery and its plug-in data, to be sealed (nothing stored yet). */
  prepare(
    content: Content,
    requester: Requester,
    reissuedFrom: string | null,
    pending: PendingDeliveryRef | null = null,
  ): PreparedDelivery {
    if (requester.clientKey) {
      const keys = this.keys.current;
      try {
        this.clientSealSecret(keys, requester.clientKey); // kept for sealing
      } catch {
        // X25519 refuses low-order points: a key that agrees on nothing.
        throw new BadRequestException('DCX-Client-Key is not a usable X25519 public key');
      }
    }
    return newDelivery(content, requester, reissuedFrom, this.config, pending);
  }

  /** Seals the plug-in data of new deliveries with the current key set: one signature for all of them (BATCH_SIGNATURES). */
  seal(prepared: PreparedDelivery[]): SealedDelivery[] {
    const keys = this.keys.current;
    const records = sealPluginDataBatch(
      prepared.map(({ plugin }) => plugin),
      keys,
      this.clientSealSecret,
      this.config.batchSignatures,
    );
    return prepared.map(({ delivery }, i) => ({ ...delivery, keyId: keys.keyId, pluginData: records[i] }));
  }
}
