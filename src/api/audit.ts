// Audit lines: what a credential did to credentials, tenants and data (keys created and revoked,
// tenants created and changed, backups taken), logged at info with who did it — the subject an
// operator revokes (an API key's id, a JWT's sub) — so a leaked key's doings can be traced.
import type { FastifyRequest } from 'fastify';

export function auditLog(req: FastifyRequest, what: string, fields: Record<string, unknown>): void {
  const p = req.principal;
  req.log.info({ audit: true, tenant_id: p.tenantId, by: p.subjectId, by_kind: p.kind, by_user: p.userId, ...fields }, what);
}
