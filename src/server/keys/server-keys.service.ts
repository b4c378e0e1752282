import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { clientSealSecret } from '../../protocol/plugin-data.js';
import { fingerprint, generateServerKeySet, parseServerKeySet, serializeServerKeySet, type ServerKeySet } from '../../protocol/keys.js';
import { AppConfig } from '../config/app-config.js';

export const SERVER_KEY_FILE_NAME = 'server-keys.json';

/** Client keys whose X25519 seal secret is kept (a few hundred bytes each: key string, Buffer, LRU entry). */
const CLIENT_SECRET_CACHE_ENTRIES = 10_000;

/** The public description of the server, served at /.well-known/dcx; clients pin serverKey. */
export interface WellKnownDocument {
  serverKey: string;
  sealKey: string;
  keyId: string;
  fingerprint: string;
  confirmHost: string;
  confirmPort: number;
  url: string;
}

/**
 * The server key set: SERVER_KEY_FILE when set (it must exist), else DATA_DIR/keys/server-keys.json,
 * generated at first start (directory 0700, file 0600) and reused afterwards.
 */
@Injectable()
export class ServerKeysService implements OnModuleInit {
  private readonly logger = new Logger(ServerKeysService.name);
  private keys: ServerKeySet | undefined;
  private source = '';
  /**
   * X25519 with a client's key (about 40 µs with importing the key, of some 115 µs that sealing a record
   * costs) is the same for every bundle sealed to that client: a client that fetches again reuses it.
   * Keyed by key id and client key, so records are never sealed with another key set's secret.
   */
  private readonly clientSecrets = new LRUCache<string, Buffer, { keys: ServerKeySet; clientPublicKey: Buffer }>({
    max: CLIENT_SECRET_CACHE_ENTRIES,
    memoMethod: (_cacheKey, _stale, { context }) => clientSealSecret(context.keys, context.clientPublicKey),
  });

  constructor(private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    if (this.config.serverKeyFile !== undefined) {
      this.keys = await this.load(this.config.serverKeyFile, 'SERVER_KEY_FILE');
      this.source = this.config.serverKeyFile;
    } else {
      this.source = join(this.config.keysDir, SERVER_KEY_FILE_NAME);
      this.keys = await this.loadOrCreate(this.source);
    }
    this.logger.log(`server key ${this.keys.keyId} (fingerprint ${fingerprint(this.keys.signPublicKey)}) from ${this.source}`);
  }

  /** The current key set: signs plug-in data and receipts, seals plug-in data. */
  get current(): ServerKeySet {
    if (this.keys === undefined) throw new Error('server keys are not loaded yet');
    return this.keys;
  }

  /** clientSealSecret(keys, clientPublicKey), kept for the next bundle; a low-order key throws (and is not kept). */
  clientSealSecret(keys: ServerKeySet, clientPublicKey: Buffer): Buffer {
    return this.clientSecrets.memo(`${keys.keyId}:${clientPublicKey.toString('base64url')}`, { context: { keys, clientPublicKey } });
  }

  /** The key set with this id (the current one today; older ones once keys rotate). */
  byKeyId(keyId: string): ServerKeySet | undefined {
    return this.current.keyId === keyId ? this.current : undefined;
  }

  /** Where the keys were loaded from (a path, never key material). */
  get keySource(): string {
    return this.source;
  }

  wellKnown(): WellKnownDocument {
    const keys = this.current;
    return {
      serverKey: keys.signPublicKey.toString('base64url'),
      sealKey: keys.sealPublicKey.toString('base64url'),
      keyId: keys.keyId,
      fingerprint: fingerprint(keys.signPublicKey),
      confirmHost: this.config.publicHost,
      confirmPort: this.config.confirmPort,
      url: this.config.publicUrl,
    };
  }

  private async load(path: string, what: string): Promise<ServerKeySet> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`${what}: cannot read the server key file ${path} (${code ?? String(error)})`, { cause: error });
    }
    let keys: ServerKeySet;
    try {
      keys = parseServerKeySet(text);
    } catch (error) {
      throw new Error(`${what}: ${path} is not a valid DCX server key file (${(error as Error).message})`, { cause: error });
    }
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) this.logger.warn(`${path} is readable by others (mode ${mode.toString(8)}); it holds private keys, use 0600`);
    return keys;
  }

  private async loadOrCreate(path: string): Promise<ServerKeySet> {
    await mkdir(this.config.keysDir, { recursive: true, mode: 0o700 });
    await chmod(this.config.keysDir, 0o700);
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      const keys = generateServerKeySet();
      try {
        await handle.writeFile(serializeServerKeySet(keys) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.logger.log(`generated a server key set into ${path}`);
      return keys;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    return this.load(path, 'server keys');
  }
}
