import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ClientIdentity, generateClientIdentity, parseClientIdentity, serializeClientIdentity } from '../protocol/keys.js';
import { DcxError, errnoCode, messageOf } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { Outbox } from './outbox.js';
import { NO_LINK_CODES } from './safe-path.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

export const IDENTITY_FILE = 'identity.json';
export const SERVERS_FILE = 'servers.json';
export const ENROLMENTS_FILE = 'enrolments.json';
/** What the resident agent (`dcx agent`) last did, read by `dcx status`. */
export const AGENT_STATE_FILE = 'agent.json';

/** `$DCX_HOME`, or `~/.config/dcx`. */
export function defaultHomeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DCX_HOME ? resolve(env.DCX_HOME) : join(homedir(), '.config', 'dcx');
}

/** The client's own directory: its identity, pinned servers, receipts and unfinished downloads. */
export class DcxHome {
  readonly identityPath: string;
  readonly serversPath: string;
  readonly enrolmentsPath: string;
  readonly receiptsDir: string;
  readonly downloadsDir: string;
  readonly agentStatePath: string;

  constructor(readonly dir: string) {
    this.identityPath = join(dir, IDENTITY_FILE);
    this.serversPath = join(dir, SERVERS_FILE);
    this.enrolmentsPath = join(dir, ENROLMENTS_FILE);
    this.receiptsDir = join(dir, 'receipts');
    this.downloadsDir = join(dir, 'downloads');
    this.agentStatePath = join(dir, AGENT_STATE_FILE);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): DcxHome {
    return new DcxHome(defaultHomeDir(env));
  }

  /** Creates the directory (0700) and a subdirectory of it when missing. */
  async ensureDir(sub?: string): Promise<string> {
    await makePrivateDir(this.dir);
    if (!sub) return this.dir;
    const path = join(this.dir, sub);
    await makePrivateDir(path);
    return path;
  }

  /** The installation's key pair, made (0600) on first use. */
  async identity(): Promise<ClientIdentity> {
    const existing = await this.readIdentity();
    if (existing) return existing;
    await this.ensureDir();
    const identity = generateClientIdentity();
    const text = serializeClientIdentity(identity) + '\n';
    try {
      await this.createIdentityFile(text);
      return identity;
    } catch (error) {
      // Two first runs at once must not end with two different identities: the one that was first is kept.
      if (errnoCode(error) === 'EEXIST') {
        const other = await this.readIdentity();
        if (other) return other;
      }
      throw new DcxError(ExitCode.Failure, `cannot create the client identity ${this.identityPath}: ${messageOf(error)}`);
    }
  }

  /**
   * Creates the identity file with `text`, failing with EEXIST when it exists. Written whole (and synced)
   * under a temp name and then hard-linked to its name, so a concurrent first run never reads half of it;
   * on a file system without hard links, created exclusively and written in place.
   */
  private async createIdentityFile(text: string): Promise<void> {
    const temp = `${this.identityPath}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeNewPrivateFile(temp, text);
      await link(temp, this.identityPath);
      return;
    } catch (error) {
      if (!NO_LINK_CODES.has(errnoCode(error) ?? '')) throw error;
    } finally {
      await rm(temp, { force: true });
    }
    await writeNewPrivateFile(this.identityPath, text);
  }

  private async readIdentity(): Promise<ClientIdentity | null> {
    const text = await readTextIfPresent(this.identityPath, 'the client identity');
    if (text === null) return null;
    try {
      return parseClientIdentity(text);
    } catch (error) {
      throw new DcxError(ExitCode.Failure, `the client identity ${this.identityPath} is unusable: ${messageOf(error)}`);
    }
  }

  pins(): PinStore {
    return new PinStore(this);
  }

  enrolments(): EnrolmentStore {
    return new EnrolmentStore(this);
  }

  /** DCX_HOME/outbox: confirmations not sent yet (`dcx retry`). */
  outbox(): Outbox {
    return new Outbox(this);
  }

  receiptPath(deliveryId: string): string {
    if (!/^[0-9a-f-]{36}$/i.test(deliveryId)) throw new DcxError(ExitCode.Failure, `not a delivery id: ${JSON.stringify(deliveryId)}`);
    return join(this.receiptsDir, `${deliveryId.toLowerCase()}.receipt`);
  }

  async saveReceipt(deliveryId: string, receipt: Buffer): Promise<string> {
    await this.ensureDir('receipts');
    const path = this.receiptPath(deliveryId);
    await writePrivateFileAtomic(path, receipt);
    return path;
  }
}

async function makePrivateDir(path: string): Promise<void> {
  const created = await mkdir(path, { recursive: true, mode: DIR_MODE });
  // mkdir's mode is filtered by the umask; a directory we made is set exactly. One that was there is left alone.
  if (created !== undefined) await chmod(path, DIR_MODE);
}

/** Creates `path` (0600; EEXIST if it exists) with `text`, synced to disk before it is closed. */
async function writeNewPrivateFile(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', FILE_MODE);
  try {
    await handle.writeFile(text);
    await handle.chmod(FILE_MODE);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes to a temp file beside `path` (0600) and renames it over `path`. */
export async function writePrivateFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, data, { mode: FILE_MODE, flag: 'wx' });
    await chmod(temp, FILE_MODE);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** A pinned server: the keys it signs and seals with, and where it said it lives. */
export interface PinnedServer {
  /** The HTTP origin the pin was made for (`https://host:port`). */
  origin: string;
  /** The server's own URL, as it announced it. */
  url: string;
  /** Ed25519 public key, base64url of the 32 raw bytes. */
  signKey: string;
  /** X25519 public key, base64url of the 32 raw bytes. */
  sealKey: string;
  keyId: string;
  /** SHA-256 of the raw signing key, hex. */
  fingerprint: string;
  confirmHost: string | null;
  confirmPort: number | null;
  pinnedAt: string;
}

interface ServersFile {
  version: 1;
  servers: PinnedServer[];
}

/** `servers.json`: the servers whose keys this client accepts (trust on first use, or `dcx trust`). */
export class PinStore {
  constructor(private readonly home: DcxHome) {}

  async list(): Promise<PinnedServer[]> {
    let text: string;
    try {
      text = await readFile(this.home.serversPath, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw new DcxError(ExitCode.Failure, `cannot read ${this.home.serversPath}: ${messageOf(error)}`);
    }
    try {
      const parsed = JSON.parse(text) as Partial<ServersFile>;
      if (parsed.version !== 1 || !Array.isArray(parsed.servers)) throw new Error('unexpected content');
      return parsed.servers;
    } catch (error) {
      throw new DcxError(ExitCode.Failure, `the pinned servers file ${this.home.serversPath} is unusable: ${messageOf(error)}`);
    }
  }

  /** The pin whose signing key is `signPublicKey` (raw 32 bytes), if any. */
  async findByKey(signPublicKey: Buffer): Promise<PinnedServer | null> {
    const key = signPublicKey.toString('base64url');
    return (await this.list()).find((s) => s.signKey === key) ?? null;
  }

  async findByOrigin(origin: string): Promise<PinnedServer | null> {
    const normalized = originOf(origin);
    return (await this.list()).find((s) => s.origin === normalized) ?? null;
  }

  /** Adds a pin, replacing any earlier pin for the same origin. Returns the replaced pin. */
  async pin(server: Omit<PinnedServer, 'pinnedAt'>): Promise<PinnedServer | null> {
    const origin = originOf(server.origin);
    const servers = await this.list();
    const previous = servers.find((s) => s.origin === origin) ?? null;
    const next: ServersFile = {
      version: 1,
      servers: [...servers.filter((s) => s.origin !== origin), { ...server, origin, pinnedAt: new Date().toISOString() }],
    };
    await this.home.ensureDir();
    await writePrivateFileAtomic(this.home.serversPath, JSON.stringify(next, null, 2) + '\n');
    return previous;
  }
}

/** This installation enrolled as a named recipient of a server (`dcx enrol`). */
export interface Enrolment {
  /** The server's HTTP origin, as its pin has it. */
  origin: string;
  recipientId: string;
  name: string;
  /** This installation's fingerprint, as the server recorded it. */
  fingerprint: string;
  enrolledAt: string;
}

interface EnrolmentsFile {
  version: 1;
  enrolments: Enrolment[];
}

/** `enrolments.json`: the servers this installation is a recipient of; its requests to them are signed. */
export class EnrolmentStore {
  constructor(private readonly home: DcxHome) {}

  async list(): Promise<Enrolment[]> {
    const path = this.home.enrolmentsPath;
    const text = await readTextIfPresent(path, 'the enrolments file');
    if (text === null) return [];
    try {
      const parsed = JSON.parse(text) as Partial<EnrolmentsFile>;
      if (parsed.version !== 1 || !Array.isArray(parsed.enrolments)) throw new Error('unexpected content');
      return parsed.enrolments;
    } catch (error) {
      throw new DcxError(ExitCode.Failure, `the enrolments file ${path} is unusable: ${messageOf(error)}`);
    }
  }

  async findByOrigin(origin: string): Promise<Enrolment | null> {
    const normalized = safeOrigin(origin);
    return (await this.list()).find((e) => e.origin === normalized) ?? null;
  }

  /** Records an enrolment, replacing an earlier one at the same origin (one recipient per server and installation). */
  async record(enrolment: Enrolment): Promise<void> {
    const origin = originOf(enrolment.origin);
    const enrolments = (await this.list()).filter((e) => e.origin !== origin);
    const next: EnrolmentsFile = { version: 1, enrolments: [...enrolments, { ...enrolment, origin }] };
    await this.home.ensureDir();
    await writePrivateFileAtomic(this.home.enrolmentsPath, JSON.stringify(next, null, 2) + '\n');
  }
}

/** A file's text, or null when it does not exist; `what` names it in the error for any other failure. */
export async function readTextIfPresent(path: string, what: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null;
    throw new DcxError(ExitCode.Failure, `cannot read ${what} ${path}: ${messageOf(error)}`);
  }
}

/** `https://Example.org:443/x` → `https://example.org`. */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/** `originOf`, or null for a URL that does not parse (a server URL read from a bundle or a receipt). */
export function safeOrigin(url: string): string | null {
  try {
    return originOf(url);
  } catch {
    return null;
  }
}
