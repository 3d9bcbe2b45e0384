// Scopes a principal can hold (PRODUCT.md §1). `admin` implies every other scope.
export const SCOPES = [
  'tasks:execute', 'tasks:read', 'tasks:list', 'tasks:cancel',
  'tasks:definitions:list', 'tasks:definitions:read', 'tasks:definitions:write',
  'approvals:decide', 'sessions:read', 'sessions:write', 'keys:manage', 'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

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
}
