import { BadRequestException, Injectable, NotFoundException } from '@nestjs/common';
import type { ListRecipientEventsQuery, ListRecipientsQuery, UpdateRecipientDto } from './dto/recipient.dto.js';
import type {
  InstallationOfRecipientView,
  RecipientDetailView,
  RecipientEventView,
  RecipientPageView,
  RecipientView,
  RevokedInstallationView,
} from './dto/recipient.view.js';
import { RecipientEventRepository } from './recipient-events.repository.js';
import { RecipientsRepository } from './recipients.repository.js';
import type { RecipientPrincipal } from './request-auth.service.js';

/** What the admin does with recipients: find them, see their installations and trail, change, revoke. */
@Injectable()
export class RecipientsService {
  constructor(
    private readonly recipients: RecipientsRepository,
    private readonly trail: RecipientEventRepository,
  ) {}

  async list(query: ListRecipientsQuery): Promise<RecipientPageView> {
    const rows = await this.recipients.list({
      search: query.search,
      labels: query.label,
      limit: query.limit,
      after: parseCursor(query.after),
    });
    const items = rows.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, next: rows.length > query.limit ? cursorOf(last) : null };
  }

  async get(id: string): Promise<RecipientDetailView> {
    const recipient = await this.found(id);
    return { ...recipient, installations: await this.recipients.installationsOf(id) };
  }

  async update(id: string, dto: UpdateRecipientDto): Promise<RecipientView> {
    const before = await this.found(id);
    const after = await this.recipients.update(id, { name: dto.name?.trim(), email: dto.email, labels: dto.labels });
    if (after === null) throw new NotFoundException(`no recipient ${id}`);
    const changed = (['name', 'email', 'labels'] as const).filter(
      (field) => JSON.stringify(before[field]) !== JSON.stringify(after[field]),
    );
    if (changed.length > 0) {
      const detail = Object.fromEntries(changed.map((field) => [field, { from: before[field], to: after[field] }]));
      await this.trail.append({ type: 'recipient-updated', recipientId: id, detail });
    }
    return after;
  }

  async events(id: string, query: ListRecipientEventsQuery): Promise<RecipientEventView[]> {
    await this.found(id);
    return this.trail.findByRecipient(id, query.limit, query.before);
  }

  /** Revokes an installation; revoking one that is revoked already answers its revocation again. */
  async revoke(fingerprint: string): Promise<RevokedInstallationView> {
    const revoked = await this.recipients.revoke(fingerprint);
    if (revoked !== null) {
      await this.trail.append({ type: 'installation-revoked', recipientId: revoked.recipientId, fingerprint });
      return { fingerprint, ...revoked };
    }
    const installation = await this.recipients.findInstallation(fingerprint);
    if (installation?.revokedAt == null) throw new NotFoundException(`no installation ${fingerprint}`);
    return { fingerprint, recipientId: installation.recipientId, revokedAt: installation.revokedAt };
  }

  /** The installation's own view of its enrolment. */
  async whoAmI(principal: RecipientPrincipal): Promise<InstallationOfRecipientView> {
    const view = await this.recipients.findInstallationView(principal.fingerprint);
    if (view === null) throw new NotFoundException(`no installation ${principal.fingerprint}`);
    return view;
  }

  private async found(id: string): Promise<RecipientView> {
    const recipient = await this.recipients.findById(id);
    if (recipient === null) throw new NotFoundException(`no recipient ${id}`);
    return recipient;
  }
}

/** The opaque `next` of a page: the last row's (name, id). */
function cursorOf(last: RecipientView): string {
  return Buffer.from(JSON.stringify([last.name, last.id])).toString('base64url');
}

function parseCursor(text: string | undefined): { name: string; id: string } | undefined {
  if (text === undefined) return undefined;
  try {
    const [name, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof name === 'string' && typeof id === 'string' && /^[0-9a-f-]{36}$/i.test(id)) return { name, id };
  } catch {
    // not JSON: refused below
  }
  throw new BadRequestException('after must be the `next` of a previous page');
}
