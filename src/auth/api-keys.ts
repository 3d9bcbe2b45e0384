// API keys: `sk_<12-char lookup prefix>_<43-char secret>` (256 bits of entropy). Only a SHA-256
// hash is stored; a request's key is found by its non-secret prefix and compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../storage/db.js';
import { apiKeysFindByPrefixes, apiKeysInsert, type ApiKeyRow } from '../storage/queries/tenants.js';
import { Batcher } from '../storage/batcher.js';
import { newKeyId } from '../domain/ids.js';
import type { Principal } from './scopes.js';

const KEY_RE = /^sk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,})$/;

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The lookup prefix: embedded in our own keys; derived from the hash for keys set by an operator. */
export function keyPrefix(key: string): string {
  const m = KEY_RE.exec(key);
  return m ? m[1]! : 'h' + hashKey(key).slice(0, 11);
}

export function generateKey(): string {
  const prefix = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
  return `sk_${prefix}_${randomBytes(32).toString('base64url')}`;
}

export async function createApiKey(
  db: Queryable,
  p: { tenantId: string; userId: string; name: string; scopes: string[]; expiresAt: Date | null; key?: string },
): Promise<{ key: string; row: ApiKeyRow }> {
  const key = p.key ?? generateKey();
  const row = await apiKeysInsert(db, {
    id: newKeyId(),
    tenant_id: p.tenantId,
    user_id: p.userId,
    name: p.name,
    prefix: keyPrefix(key),
    key_hash: hashKey(key),
    scopes: p.scopes,
    expires_at: p.expiresAt,
  });
  return { key, row };
}

type KeyRow = ApiKeyRow & { tenant_rate_limit: Principal['rateLimit'] };

/** The principal for `key` among candidate rows, comparing SHA-256 hashes in constant time. */
function match(key: string, candidates: readonly KeyRow[], now: Date): Principal | undefined {
  const presented = Buffer.from(hashKey(key), 'hex');
  for (const row of candidates) {
    const stored = Buffer.from(row.key_hash, 'hex');
    if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) continue;
    if (row.revoked_at) return undefined;
    if (row.expires_at && row.expires_at.getTime() <= now.getTime()) return undefined;
    return { kind: 'api_key', tenantId: row.tenant_id, userId: row.user_id, subjectId: row.id, scopes: row.scopes, rateLimit: row.tenant_rate_limit };
  }
  return undefined;
}

const plausible = (key: string): boolean => key.length >= 8 && key.length <= 512;

/** Resolves a presented key to its principal, or undefined for unknown, revoked and expired keys. */
export async function verifyApiKey(db: Queryable, key: string, now: Date = new Date()): Promise<Principal | undefined> {
  if (!plausible(key)) return undefined;
  return match(key, await apiKeysFindByPrefixes(db, [keyPrefix(key)]), now);
}

/**
 * verifyApiKey for the request path: concurrent requests share one lookup statement. A request
 * only joins a lookup that starts after it arrived (the Batcher flushes what queued while the
 * previous statement ran), so a key revoked before a request was sent is refused on that request
 * — on every node, nothing is cached. Under 64 concurrent requests this turns 64 queries into 1–2.
 */
export function createApiKeyVerifier(db: Queryable, opts: { maxInFlight?: number } = {}): (key: string) => Promise<Principal | undefined> {
  const batcher = new Batcher<string, Principal | undefined>({
    maxInFlight: opts.maxInFlight ?? 2,
    maxBatch: 500,
    flush: async (keys) => {
      const rows = await apiKeysFindByPrefixes(db, [...new Set(keys.map(keyPrefix))]);
      const byPrefix = new Map<string, KeyRow[]>();
      for (const r of rows) byPrefix.set(r.prefix, [...(byPrefix.get(r.prefix) ?? []), r]);
      const now = new Date();
      return keys.map((k) => match(k, byPrefix.get(keyPrefix(k)) ?? [], now));
    },
  });
  return (key) => (plausible(key) ? batcher.submit(key) : Promise.resolve(undefined));
}
