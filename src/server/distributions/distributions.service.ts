import { BadRequestException, ConflictException, Injectable, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppConfig } from '../config/app-config.js';
import { ContentsService } from '../contents/contents.service.js';
import { csvCell } from '../deliveries/csv.js';
import { UnitOfWork } from '../deliveries/unit-of-work.js';
import { statusesOf, summarise } from './distribution-status.js';
import { DistributionRepository, DistributionRow } from './distribution.repository.js';
import { CreateDistributionDto, DistributionQuery } from './dto/distribution.dto.js';
import { DistributionDetailView, DistributionView } from './dto/distribution.view.js';

/** Issue 15, what and to whom: distributions of one content to many recipients, their status, re-sends and cancels. */
/** Recipients from which a new distribution changes the deliveries table enough to analyse it (ANALYZE samples 30,000 rows). */
const LARGE_DISTRIBUTION = 10_000;

@Injectable()
export class DistributionsService {
  constructor(
    private readonly config: AppConfig,
    private readonly contents: ContentsService,
    private readonly repository: DistributionRepository,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /** POST /api/distributions: validated, groups resolved now (snapshot in sources), every pending delivery in one statement. */
  async create(dto: CreateDistributionDto): Promise<DistributionView> {
    const content = await this.contents.findLive(dto.contentId);
    const recipients = [...new Set((dto.recipients ?? []).map((id) => id.toLowerCase()))];
    const groups = [...new Set((dto.groups ?? []).map((id) => id.toLowerCase()))];
    const id = randomUUID();
    const total = await this.unitOfWork.transaction(async (work) => {
      const unknown = recipients.length > 0 ? await this.repository.unknownRecipients(work, recipients) : [];
      if (unknown.length > 0) throw new BadRequestException(`unknown recipients: ${unknown.join(', ')}`);
      const sources = groups.length > 0 ? await this.repository.groupSnapshots(work, groups) : [];
      const missing = groups.filter((g) => !sources.some((s) => s.groupId === g));
      if (missing.length > 0) throw new BadRequestException(`unknown groups: ${missing.join(', ')}`);
      const dueAt = dto.dueAt ? new Date(dto.dueAt) : null;
      const total = await this.repository.create(work, {
        id,
        contentId: content.id,
        note: dto.note ?? null,
        dueAt,
        recipients,
        groups,
        sources,
        ttlMs: this.config.deliveryTtlMs,
      });
      // Rolled back: a distribution to nobody is a mistake of its author.
      if (total === 0) throw new UnprocessableEntityException('no recipients: the named recipients and groups resolve to nobody');
      return total;
    });
    // Until autovacuum analyses them, the planner does not know these rows exist and pages a large distribution by
    // sorting all of it (65 ms at 100,000 instead of 1 ms): a large one refreshes the statistics at once.
    if (total >= LARGE_DISTRIBUTION) await this.repository.refreshStatistics();
    return this.summary(id);
  }

  async list(): Promise<DistributionView[]> {
    const rows = await this.repository.list(500);
    const counts = await this.repository.countsOf(rows.map(({ id }) => id));
    const now = new Date();
    return rows.map((row) => toView(row, summarise(counts.get(row.id) ?? [], row.dueAt, now)));
  }

  /** GET /api/distributions/:id: counts and a keyset page of recipients (status, overdue or unconfirmed). */
  async get(id: string, query: DistributionQuery): Promise<DistributionDetailView> {
    const row = await this.found(id);
    const now = new Date();
    const [counts, items] = await Promise.all([this.repository.counts(id), this.pageOf(row, query.status, query.limit, query.after, now)]);
    const next = items.length === query.limit ? items[items.length - 1].recipientId : null;
    return { ...toView(row, summarise(counts, row.dueAt, now)), recipients: { items, next } };
  }

  private async pageOf(row: DistributionRow, status: DistributionQuery['status'], limit: number, after: string | undefined, now: Date) {
    const statuses = statusesOf(status, row.dueAt, now);
    if (statuses.length === 0) return [];
    const rows = await this.repository.page(row.id, statuses, limit, after);
    return rows.map(({ recipientId, name, email, deliveryId, status, fingerprint, sentAt, confirmedAt }) => ({
      recipientId,
      name,
      email,
      deliveryId,
      status,
      fingerprint,
      sentAt,
      confirmedAt,
    }));
  }

  /** The recipients as CSV lines, header first, read by pages of 1000 (memory flat for any count). */
  async *recipientsCsv(id: string, status: DistributionQuery['status']): AsyncGenerator<string> {
    const row = await this.found(id);
    const statuses = statusesOf(status, row.dueAt, new Date());
    yield 'recipient_id,name,email,delivery_id,status,fingerprint,issued_at,sent_at,confirmed_at\r\n';
    if (statuses.length === 0) return;
    let after: string | undefined;
    for (;;) {
      const page = await this.repository.page(id, statuses, 1000, after);
      if (page.length > 0) yield page.map(recipientCsvRow).join('');
      if (page.length < 1000) return;
      after = page[page.length - 1].recipientId;
    }
  }

  /** POST /api/distributions/:id/cancel: pending deliveries withdrawn; sealed ones stay confirmable. */
  async cancel(id: string): Promise<DistributionView> {
    await this.unitOfWork.transaction(async (work) => {
      const row = await this.repository.findOne(id, work, true);
      if (!row) throw new NotFoundException(`no distribution ${id}`);
      if (row.cancelledAt) throw new ConflictException(`distribution ${id} was already cancelled at ${row.cancelledAt.toISOString()}`);
      await this.repository.cancel(work, id);
    });
    return this.summary(id);
  }

  /** POST /api/distributions/:id/resend: a new pending delivery supersedes a sent, failed or expired one. */
  async resend(id: string, recipientId: string | undefined): Promise<{ resent: { from: string; to: string }[] }> {
    // The content is looked up before the transaction: ContentsService reads on a connection of its own, and the
    // embedded database has one connection, which the transaction holds (the re-send hung there).
    const { contentId } = await this.found(id);
    await this.contents.findLive(contentId).catch(() => {
      throw new ConflictException(`the content of distribution ${id} was removed; it cannot be re-sent`);
    });
    const resent = await this.unitOfWork.transaction(async (work) => {
      const row = await this.repository.findOne(id, work, true);
      if (!row) throw new NotFoundException(`no distribution ${id}`);
      if (row.cancelledAt) throw new ConflictException(`distribution ${id} was cancelled; it cannot be re-sent`);
      if (recipientId) {
        const current = await this.repository.currentOf(work, id, recipientId);
        if (!current) throw new NotFoundException(`recipient ${recipientId} is not in distribution ${id}`);
        if (current.status === 'confirmed')
          throw new ConflictException(`recipient ${recipientId} already confirmed delivery ${current.id}`);
      }
      return this.repository.resend(work, id, this.config.deliveryTtlMs, recipientId);
    });
    return { resent };
  }

  private async summary(id: string): Promise<DistributionView> {
    const row = await this.found(id);
    return toView(row, summarise(await this.repository.counts(id), row.dueAt, new Date()));
  }

  async found(id: string): Promise<DistributionRow> {
    const row = await this.repository.findOne(id);
    if (!row) throw new NotFoundException(`no distribution ${id}`);
    return row;
  }
}

function toView(row: DistributionRow, counts: Record<string, number>): DistributionView {
  return {
    id: row.id,
    content: { id: row.contentId, name: row.contentName, size: row.contentSize, sha256: row.contentSha256 },
    note: row.note,
    dueAt: row.dueAt,
    createdAt: row.createdAt,
    cancelledAt: row.cancelledAt,
    completedAt: row.completedAt,
    overdueAt: row.overdueAt,
    counts,
    sources: row.sources,
  };
}

function recipientCsvRow(r: {
  recipientId: string;
  name: string;
  email: string | null;
  deliveryId: string;
  status: string;
  fingerprint: string | null;
  issuedAt: Date;
  sentAt: Date | null;
  confirmedAt: Date | null;
}): string {
  return (
    [r.recipientId, r.name, r.email, r.deliveryId, r.status, r.fingerprint, r.issuedAt, r.sentAt, r.confirmedAt].map(csvCell).join(',') +
    '\r\n'
  );
}
