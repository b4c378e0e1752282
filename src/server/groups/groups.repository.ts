import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, QueryFailedError } from 'typeorm';
import type { GroupMemberView, GroupView } from './dto/group.view.js';

/**
 * The recipients of the groups whose ids are the uuid[] parameter `param`: the static members and everyone
 * whose labels include all of a group's selector labels, each once. For statements that resolve groups,
 * such as a distribution's INSERT … SELECT.
 */
export function groupMembersSql(param: string): string {
  return `SELECT m.recipient_id AS id FROM recipient_group_members m WHERE m.group_id = ANY(${param}::uuid[])
          UNION
          SELECT r.id FROM recipient_groups g JOIN recipients r ON r.labels @> g.selector_labels
           WHERE g.id = ANY(${param}::uuid[]) AND g.selector_labels IS NOT NULL`;
}

// `grp`, not `g`: groupMembersSql names its own tables g, r and m.
const GROUP_COLUMNS = `grp.id, grp.name, grp.selector_labels AS "selectorLabels", grp.created_at AS "createdAt",
  (SELECT count(*)::int FROM recipient_group_members gm WHERE gm.group_id = grp.id) AS "memberCount",
  (SELECT count(*)::int FROM (${groupMembersSql('ARRAY[grp.id]')}) resolved) AS "resolvedCount"`;

const MEMBERS_SQL = `
  SELECT r.id, r.name, r.email, r.labels,
         EXISTS (SELECT 1 FROM recipient_group_members m WHERE m.group_id = $1 AND m.recipient_id = r.id) AS "member",
         coalesce(r.labels @> g.selector_labels, false) AS "selected"
    FROM (${groupMembersSql('ARRAY[$1::uuid]')}) resolved
    JOIN recipients r ON r.id = resolved.id
    CROSS JOIN recipient_groups g
   WHERE g.id = $1
   ORDER BY r.name, r.id`;

/** A group as stored, with its static and resolved member counts. */
export type GroupRow = Omit<GroupView, 'selector'> & { selectorLabels: string[] | null };

/** recipient_groups and recipient_group_members. Changes run in the caller's transaction. */
@Injectable()
export class GroupsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The new group's id, or null when the name is taken. */
  async insert(manager: EntityManager, name: string, selectorLabels: string[] | null): Promise<string | null> {
    const rows = await manager.query<{ id: string }[]>(
      `INSERT INTO recipient_groups (name, selector_labels) VALUES ($1, $2::text[]) ON CONFLICT (name) DO NOTHING RETURNING id`,
      [name, selectorLabels],
    );
    return rows[0]?.id ?? null;
  }

  /** Whether the group exists; it stays locked against other changes until the transaction ends. */
  async lock(manager: EntityManager, id: string): Promise<boolean> {
    const rows = await manager.query<unknown[]>(`SELECT 1 FROM recipient_groups WHERE id = $1 FOR UPDATE`, [id]);
    return rows.length > 0;
  }

  /** Renames the group; false when another group has the name. */
  async rename(manager: EntityManager, id: string, name: string): Promise<boolean> {
    try {
      await manager.query(`WITH renamed AS (UPDATE recipient_groups SET name = $2 WHERE id = $1 RETURNING 1) SELECT 1 FROM renamed`, [
        id,
        name,
      ]);
      return true;
    } catch (error) {
      if (error instanceof QueryFailedError && (error.driverError as { code?: string }).code === '23505') return false;
      throw error;
    }
  }

  async setSelector(manager: EntityManager, id: string, selectorLabels: string[] | null): Promise<void> {
    await manager.query(
      `WITH changed AS (UPDATE recipient_groups SET selector_labels = $2::text[] WHERE id = $1 RETURNING 1) SELECT 1 FROM changed`,
      [id, selectorLabels],
    );
  }

  async addMembers(manager: EntityManager, id: string, recipientIds: string[]): Promise<void> {
    await manager.query(
      `INSERT INTO recipient_group_members (group_id, recipient_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
      [id, recipientIds],
    );
  }

  async removeMembers(manager: EntityManager, id: string, recipientIds: string[]): Promise<void> {
    await manager.query(
      `WITH gone AS (DELETE FROM recipient_group_members WHERE group_id = $1 AND recipient_id = ANY($2::uuid[]) RETURNING 1) SELECT 1 FROM gone LIMIT 1`,
      [id, recipientIds],
    );
  }

  /** Deletes the group (its static members with it); false when there was none. */
  async delete(id: string): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `WITH gone AS (DELETE FROM recipient_groups WHERE id = $1 RETURNING 1) SELECT 1 FROM gone`,
      [id],
    );
    return rows.length > 0;
  }

  list(): Promise<GroupRow[]> {
    return this.dataSource.query<GroupRow[]>(`SELECT ${GROUP_COLUMNS} FROM recipient_groups grp ORDER BY grp.name, grp.id`);
  }

  async findById(id: string): Promise<GroupRow | null> {
    const rows = await this.dataSource.query<GroupRow[]>(`SELECT ${GROUP_COLUMNS} FROM recipient_groups grp WHERE grp.id = $1`, [id]);
    return rows[0] ?? null;
  }

  /** The group's recipients, by name: static members and those its selector matches. */
  membersOf(id: string): Promise<(Omit<GroupMemberView, 'via'> & { member: boolean; selected: boolean })[]> {
    return this.dataSource.query(MEMBERS_SQL, [id]);
  }

  /** Of these ids, those that name no group, in the order given. */
  async unknownIds(ids: string[]): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(
      `SELECT k.id FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, ord)
        WHERE NOT EXISTS (SELECT 1 FROM recipient_groups g WHERE g.id = k.id) ORDER BY k.ord`,
      [ids],
    );
    return rows.map((row) => row.id);
  }

  /** The distinct recipient ids of these groups, resolved now. */
  async memberIdsOf(groupIds: string[]): Promise<string[]> {
    const rows = await this.dataSource.query<{ id: string }[]>(`SELECT id FROM (${groupMembersSql('$1')}) resolved ORDER BY id`, [
      groupIds,
    ]);
    return rows.map((row) => row.id);
  }
}
