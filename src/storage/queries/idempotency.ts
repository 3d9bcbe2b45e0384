// DML for idempotency records. Times come from the database clock so that every API node agrees
// on lock and expiry deadlines.
import type { Queryable } from '../db.js';

export interface IdempotencyScope {
  tenantId: string;
  principal: string;
  route: string;
  key: string;
}

export interface IdempotencyRow {
  tenant_id: string;
  principal: string;
  route: string;
  key: string;
  request_hash: string;
  state: 'in_flight' | 'done';
  lock_token: string;
  locked_until: Date;
  status_code: number | null;
  response_headers: Record<string, string> | null;
  response_body: string | null;
  created_at: Date;
  expires_at: Date;
  /** Computed by the lookup: the row is past expires_at (in flight: its lock's end; done: stored + TTL). */
  expired?: boolean;
  /** Computed by the lookup: an in-flight row whose lock ran out. */
  lock_expired?: boolean;
}

const PK = 'tenant_id = $1 AND principal = $2 AND route = $3 AND key = $4';
const pk = (s: IdempotencyScope) => [s.tenantId, s.principal, s.route, s.key];

/** Claims the key for a new request; undefined when a row already exists. */
export async function idempotencyKeysInsert(
  db: Queryable,
  p: IdempotencyScope & { requestHash: string; lockToken: string; lockMs: number },
): Promise<IdempotencyRow | undefined> {
  const res = await db.query<IdempotencyRow>(
    `INSERT INTO idempotency_keys (tenant_id, principal, route, key, request_hash, state, lock_token, locked_until, expires_at)
     VALUES ($1, $2, $3, $4, $5, 'in_flight', $6, now() + $7 * interval '1 millisecond', now() + $7 * interval '1 millisecond')
     ON CONFLICT DO NOTHING RETURNING *`,
    [...pk(p), p.requestHash, p.lockToken, p.lockMs],
  );
  return res.rows[0];
}

export async function idempotencyKeysGet(db: Queryable, s: IdempotencyScope): Promise<IdempotencyRow | undefined> {
  const res = await db.query<IdempotencyRow>(
    `SELECT *, expires_at <= now() AS expired, (state = 'in_flight' AND locked_until <= now()) AS lock_expired
       FROM idempotency_keys WHERE ${PK}`,
    pk(s),
  );
  return res.rows[0];
}

/**
 * Takes over an expired row: a stored response past its TTL, or an in-flight claim whose lock ran
 * out (its request died). An in-flight row expires with its lock, never before it, so a short TTL
 * cannot hand a key still being served to another request. Undefined when it lost the race.
 */
export async function idempotencyKeysTakeOver(
  db: Queryable,
  p: IdempotencyScope & { requestHash: string; lockToken: string; lockMs: number },
): Promise<IdempotencyRow | undefined> {
  const res = await db.query<IdempotencyRow>(
    `UPDATE idempotency_keys
        SET request_hash = $5, state = 'in_flight', lock_token = $6, locked_until = now() + $7 * interval '1 millisecond',
            status_code = NULL, response_headers = NULL, response_body = NULL, created_at = now(),
            expires_at = now() + $7 * interval '1 millisecond'
      WHERE ${PK} AND (expires_at <= now() OR (state = 'in_flight' AND locked_until <= now()))
      RETURNING *`,
    [...pk(p), p.requestHash, p.lockToken, p.lockMs],
  );
  return res.rows[0];
}

/** Stores the response of the request holding the lock; false when it no longer holds it. */
export async function idempotencyKeysComplete(
  db: Queryable,
  p: IdempotencyScope & { lockToken: string; statusCode: number; headers: Record<string, string>; body: string; ttlMs: number },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE idempotency_keys SET state = 'done', status_code = $6, response_headers = $7::jsonb, response_body = $8,
            expires_at = statement_timestamp() + $9 * interval '1 millisecond'
      WHERE ${PK} AND state = 'in_flight' AND lock_token = $5`,
    [...pk(p), p.lockToken, p.statusCode, JSON.stringify(p.headers), p.body, p.ttlMs],
  );
  return res.rowCount > 0;
}

/** Extends an in-flight claim's lock (its request still runs); false once it is no longer this request's. */
export async function idempotencyKeysRenew(db: Queryable, p: IdempotencyScope & { lockToken: string; lockMs: number }): Promise<boolean> {
  const res = await db.query(
    `UPDATE idempotency_keys SET locked_until = now() + $6 * interval '1 millisecond', expires_at = now() + $6 * interval '1 millisecond'
      WHERE ${PK} AND state = 'in_flight' AND lock_token = $5`,
    [...pk(p), p.lockToken, p.lockMs],
  );
  return res.rowCount > 0;
}

/** Forgets an in-flight claim (the request failed), so a corrected retry can use the key. */
export async function idempotencyKeysRelease(db: Queryable, p: IdempotencyScope & { lockToken: string }): Promise<boolean> {
  const res = await db.query(`DELETE FROM idempotency_keys WHERE ${PK} AND state = 'in_flight' AND lock_token = $5`, [...pk(p), p.lockToken]);
  return res.rowCount > 0;
}

/**
 * Forgets every in-flight claim: at the start of the one process an embedded database serves, each
 * belongs to a request of a process that is gone (killed mid-request), and a retry under its key
 * answered 409 IDEMPOTENCY_KEY_IN_PROGRESS until the lock ran out (request timeout + 30 s).
 * Returns how many.
 */
export async function idempotencyKeysReleaseAll(db: Queryable): Promise<number> {
  return (await db.query(`DELETE FROM idempotency_keys WHERE state = 'in_flight'`)).rowCount;
}

/** Deletes up to `limit` expired rows; returns how many. */
export async function idempotencyKeysDeleteExpired(db: Queryable, limit: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)`,
    [limit],
  );
  return res.rowCount;
}
