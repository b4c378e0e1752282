import type { EntityManager } from 'typeorm';

/**
 * Serialises writers of one stored file (upload vs delete of the same SHA-256) across transactions
 * and replicas; released at commit.
 */
export async function lockDigest(manager: EntityManager, sha256: string): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [sha256]);
}
