// Scopes a principal can hold (PRODUCT.md §1; the list lives in the contract, shared with the SDK).
// `admin` implies every other scope.
import { SCOPES, type Scope } from '../contract/auth.js';

export { SCOPES, type Scope };

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(held: readonly string[], needed: Scope): boolean {
  return held.includes('admin') || held.includes(needed);
}

export interface Principal {
  kind: 'api_key' | 'jwt' | 'anonymous';
  tenantId: string;
  userId: string;
  /** API key id (`key_…`) or JWT subject. */
  subjectId: string;
  scopes: readonly string[];
  rateLimit: { per_minute: number; burst: number } | null;
  /** When the credential itself ends: the API key's `expires_at`, the JWT's `exp`; unset: never. */
  expiresAt?: Date;
}

/** A new key's scopes must be a subset of its creator's (`admin` may grant anything). */
export function ungrantable(held: readonly string[], requested: readonly string[]): string[] {
  if (held.includes('admin')) return [];
  return requested.filter((s) => !held.includes(s));
}
