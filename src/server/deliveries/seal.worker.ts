import { workerData } from 'node:worker_threads';
import { parseServerKeySet } from '../../protocol/keys.js';
import { sealBatch, type SealRequest, type SealResult } from './seal-batch.js';

/** A sealing thread (see PluginDataSealer): the server key set comes once, with the thread. */
const keys = parseServerKeySet((workerData as { keys: string }).keys);

export default function seal(requests: SealRequest[]): SealResult[] {
  return sealBatch(requests, keys);
}
