import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * The webhook outbox, written in the same statement as the events it follows: one webhook_jobs row
 * per event of the CTE `event` (id, delivery_id, type) and active webhook subscribed to its type, in
 * event order. With no webhooks it selects nothing.
 */
export const WEBHOOK_OUTBOX_CTE = `jobs AS (
    INSERT INTO webhook_jobs (webhook_id, event_id, delivery_id)
    SELECT w.id, event.id, event.delivery_id FROM event JOIN webhooks w ON w.active AND (w.events IS NULL OR event.type = ANY (w.events))
    ORDER BY event.id, w.id
  )`;

/**
 * Claims one due job per (webhook, delivery) that has no earlier job of the same delivery still
 * pending, so a delivery's events reach a webhook in order; rows being claimed by another replica are
 * skipped. The claim is a lease (locked_until), not a held transaction: no transaction stays open
 * while a receiver is slow, which also matters on PGlite, where transactions run one at a time.
 */
const CLAIM_SQL = `
  WITH due AS (
    SELECT j.id FROM webhook_jobs j
    WHERE j.state = 'pending' AND j.next_attempt_at <= now()
      AND (j.locked_until IS NULL OR j.locked_until < now())
      AND NOT EXISTS (
        SELECT 1 FROM webhook_jobs p
        WHERE p.webhook_id = j.webhook_id AND p.state = 'pending' AND p.id < j.id
          AND p.delivery_id IS NOT DISTINCT FROM j.delivery_id
      )
    ORDER BY j.next_attempt_at, j.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
  ), claimed AS (
    UPDATE webhook_jobs j
    SET locked_until = now() + make_interval(secs => $2::double precision / 1000), attempts = j.attempts + 1
    FROM due, webhooks w
    WHERE j.id = due.id AND w.id = j.webhook_id
    RETURNING j.id, j.webhook_id, j.event_id, j.delivery_id, j.attempts, j.body, w.url, w.secret
  )
  SELECT * FROM claimed ORDER BY id`;

const INSERT_ATTEMPT_SQL = `INSERT INTO webhook_attempts (webhook_id, job_id, event_id, delivery_id, attempt, duration_ms, status_code, error, success)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;

const SETTLE_JOB_SQL = `UPDATE webhook_jobs SET
           body = coalesce(body, $2),
           locked_until = NULL,
           last_error = $3,
           state = $4,
           completed_at = CASE WHEN $4 = 'pending' THEN NULL ELSE now() END,
           next_attempt_at = CASE WHEN $4 = 'pending' THEN now() + make_interval(secs => $5::double precision / 1000) ELSE next_attempt_at END
         WHERE id = $1`;

/** A job leased by this worker, with what its POST needs. */
export interface ClaimedJob {
  id: string;
  webhook_id: string;
  event_id: string;
  delivery_id: string | null;
  attempts: number;
  body: string | null;
  url: string;
  secret: string;
}

/** One POST of a job and how it ended. */
export interface AttemptOutcome {
  success: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export type JobState = 'pending' | 'delivered' | 'failed';

/** The webhook outbox (webhook_jobs) and its attempt log, as the worker and the admin API use them. */
@Injectable()
export class WebhookJobRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async countActiveWebhooks(): Promise<number> {
    const [row] = await this.dataSource.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM webhooks WHERE active`);
    return row.n;
  }

  /** Leases up to `limit` due jobs for `leaseMs`. */
  claim(limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    return this.dataSource.query<ClaimedJob[]>(CLAIM_SQL, [limit, leaseMs]);
  }

  /** Logs an attempt and settles its job (`state`; a pending job is due again in `retryInMs`), in one transaction. */
  async recordAttempt(job: ClaimedJob, body: string, outcome: AttemptOutcome, state: JobState, retryInMs: number): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await manager.query(INSERT_ATTEMPT_SQL, [
        job.webhook_id,
        job.id,
        job.event_id,
        job.delivery_id,
        job.attempts,
        outcome.durationMs,
        outcome.statusCode,
        outcome.error,
        outcome.success,
      ]);
      await manager.query(SETTLE_JOB_SQL, [job.id, body, outcome.error, state, retryInMs]);
    });
  }

  /** How many jobs of a webhook are in each state (zeros filled). */
  async countByState(webhookId: string): Promise<Record<JobState, number>> {
    const counts = await this.dataSource.query<{ state: JobState; count: number }[]>(
      'SELECT "j"."state" AS "state", count(*)::int AS "count" FROM "webhook_jobs" "j" WHERE "j"."webhook_id" = $1 GROUP BY "j"."state"',
      [webhookId],
    );
    const jobs = { pending: 0, delivered: 0, failed: 0 };
    for (const { state, count } of counts) jobs[state] = count;
    return jobs;
  }
}
