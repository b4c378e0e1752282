import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, In, Repository } from 'typeorm';
import { Content } from './content.entity.js';

/** A new content's row, before the database gives it an id and a creation time. */
export type NewContent = Omit<Content, 'id' | 'createdAt' | 'deletedAt'>;

/**
 * The contents table. Writers of one stored file (an upload and a delete of the same SHA-256) hold that
 * digest's advisory lock for their transaction, across replicas, so that a file is never removed under a
 * content that was just stored with it.
 */
@Injectable()
export class ContentRepository {
  constructor(@InjectRepository(Content) private readonly contents: Repository<Content>) {}

  /** A live (not deleted) content; soft-deleted rows are left out by TypeORM. */
  findLive(id: string): Promise<Content | null> {
    return this.contents.findOne({ where: { id } });
  }

  findLiveByIds(ids: string[]): Promise<Content[]> {
    return this.contents.find({ where: { id: In(ids) } });
  }

  /** Every live content, newest first. */
  listLive(): Promise<Content[]> {
    return this.contents.find({ order: { createdAt: 'DESC', id: 'ASC' } });
  }

  /** The live contents with public access, by name. */
  listPublic(): Promise<Content[]> {
    return this.contents.find({ where: { access: 'public' }, order: { name: 'ASC', id: 'ASC' } });
  }

  /** Inserts a content under its digest's lock; `storeFile` stores its bytes meanwhile and gives the storage key. */
  insertStored(row: Omit<NewContent, 'storageKey'>, storeFile: () => Promise<string>): Promise<Content> {
    return this.contents.manager.transaction(async (manager) => {
      await lockDigest(manager, row.sha256);
      const storageKey = await storeFile();
      return manager.save(manager.create(Content, { ...row, storageKey }));
    });
  }

  /**
   * Soft-deletes a live content under its digest's lock; `removeFile` runs inside the transaction when no
   * other live content has the same bytes. False when there is no such live content.
   */
  softDelete(id: string, removeFile: (storageKey: string) => Promise<void>): Promise<boolean> {
    return this.contents.manager.transaction(async (manager) => {
      const content = await manager.findOne(Content, { where: { id } });
      if (content === null) return false;
      await lockDigest(manager, content.sha256);
      await manager.softDelete(Content, { id });
      const stillUsed = await manager.exists(Content, { where: { sha256: content.sha256 } });
      if (!stillUsed) await removeFile(content.storageKey);
      return true;
    });
  }
}

/** Released at commit: serialises writers of one stored file across transactions and replicas. */
async function lockDigest(manager: EntityManager, sha256: string): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [sha256]);
}
