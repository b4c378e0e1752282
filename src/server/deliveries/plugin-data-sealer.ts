import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Piscina } from 'piscina';
import { serializeServerKeySet } from '../../protocol/keys.js';
import type { PluginData } from '../../protocol/plugin-data.js';
import { AppConfig } from '../config/app-config.js';
import { ServerKeysService } from '../keys/server-keys.service.js';
import { GroupCommit } from './group-commit.js';
import { sealBatch, unpackSealResult, type SealRequest, type SealResult } from './seal-batch.js';

/** Seals per message at most: enough to make crossing threads cheap, few enough not to hold the others up. */
const SEAL_BATCH_MAX = 16;

/**
 * [88] Seals plug-in data off the HTTP thread: the per-bundle cryptography is the largest part of a small
 * bundle's cost (measured: 0.15 of 0.32 ms of the server's CPU per 10 KiB bundle), so SEAL_THREADS worker
 * threads (a Piscina pool) do it while the event loop serves requests. Requests that arrive while the
 * threads are busy go together in one message (GroupCommit), so crossing threads costs little per bundle.
 * With SEAL_THREADS=0 it is done on the calling thread.
 */
@Injectable()
export class PluginDataSealer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(PluginDataSealer.name);
  private pool: Piscina<SealRequest[], SealResult[]> | null = null;
  private readonly batches: GroupCommit<SealRequest, SealResult>;

  constructor(
    private readonly config: AppConfig,
    private readonly keys: ServerKeysService,
  ) {
    // Handed over once sent: a thread finishing one batch finds the next already queued, not a round trip away.
    this.batches = new GroupCommit(
      (requests, handOver) => {
        if (!this.pool) return Promise.resolve(sealBatch(requests, this.keys.current));
        const sealed = this.pool.run(requests);
        handOver();
        return sealed;
      },
      2 * Math.max(1, config.sealThreads),
      SEAL_BATCH_MAX,
    );
  }

  /** The key set is loaded by then (KeysModule initialises first); each thread gets it once. */
  onModuleInit(): void {
    const threads = this.config.sealThreads;
    if (threads === 0) return;
    this.pool = new Piscina({
      filename: new URL('./seal.worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      workerData: { keys: serializeServerKeySet(this.keys.current) },
    });
    this.logger.log(`${threads} thread${threads === 1 ? '' : 's'} sealing plug-in data`);
  }

  async onModuleDestroy(): Promise<void> {
    await this.pool?.destroy();
  }

  /** The sealed plug-in data of a new delivery and its confirmation key; a ProtocolError for an unusable client key. */
  async seal(data: PluginData, clientKey: Buffer | null): Promise<{ pluginData: Buffer; confirmKey: Buffer }> {
    return unpackSealResult(await this.batches.submit({ data, clientKey, keyId: this.keys.current.keyId }));
  }
}
