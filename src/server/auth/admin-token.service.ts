import { hkdfSync } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { matchesHash, newSecret, sha256Hex } from './secrets.js';

/**
 * The admin token: ADMIN_TOKEN if set, else a token generated at first start into
 * DATA_DIR/admin-token (mode 0600) and reused afterwards. Only its SHA-256 stays in memory;
 * the token itself is never logged.
 */
@Injectable()
export class AdminTokenService implements OnModuleInit {
  private readonly logger = new Logger(AdminTokenService.name);
  private tokenHash: string | undefined;
  private sessionKeyBytes: Buffer | undefined;

  constructor(private readonly config: AppConfig) {}

  async onModuleInit(): Promise<void> {
    const token = this.config.adminToken ?? (await this.loadOrCreate(this.config.adminTokenFile));
    this.tokenHash = sha256Hex(token);
    // Derived from the token: every replica with the same token agrees, and a new token ends every session.
    this.sessionKeyBytes = Buffer.from(hkdfSync('sha256', token, 'dcx admin session', 'session cookie mac v1', 32));
  }

  /** The HMAC key of admin session cookies, derived from the admin token with HKDF. */
  get sessionKey(): Buffer {
    if (this.sessionKeyBytes === undefined) throw new Error('the admin token is not loaded yet');
    return this.sessionKeyBytes;
  }

  /** Where the token comes from, for the start-up log line (never the token). */
  describeSource(): string {
    return this.config.adminToken !== undefined ? 'ADMIN_TOKEN (environment)' : this.config.adminTokenFile;
  }

  /** Constant-time check of a presented token. */
  verify(presented: string): boolean {
    if (this.tokenHash === undefined) return false;
    return matchesHash(presented, this.tokenHash);
  }

  private async loadOrCreate(path: string): Promise<string> {
    await mkdir(this.config.dataDir, { recursive: true, mode: 0o700 });
    try {
      const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      const token = newSecret();
      try {
        await handle.writeFile(`${token}\n`);
      } finally {
        await handle.close();
      }
      this.logger.log(`generated an admin token into ${path}`);
      return token;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length < 16) throw new Error(`the admin token file ${path} is empty or too short; delete it to generate a new token`);
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      await chmod(path, 0o600);
      this.logger.warn(`${path} was readable by others (mode ${mode.toString(8)}); set to 0600`);
    }
    return token;
  }
}
