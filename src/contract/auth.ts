// Wire schemas of the key-management and tenant-administration routes (PRODUCT.md §3 "Auth and
// keys"). Shared by the routes (validation, OpenAPI) and the SDK (types).
import { Type, type Static } from 'typebox';
import { ID_REGEX, Nullable } from './tasks.js';

/** Scopes a principal can hold (PRODUCT.md §1). `admin` implies every other scope. */
export const SCOPES = [
  'tasks:execute', 'tasks:read', 'tasks:list', 'tasks:cancel',
  'tasks:definitions:list', 'tasks:definitions:read', 'tasks:definitions:write',
  'approvals:decide', 'sessions:read', 'sessions:write', 'keys:manage', 'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

const ScopeName = Type.Enum([...SCOPES], { description: 'A scope name' });
const Name = Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' });

export const Page = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
    offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: 0 })),
  },
  { additionalProperties: false },
);

export const CreateApiKeyBody = Type.Object(
  {
    name: Name,
    scopes: Type.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    expires_at: Type.Optional(Type.String({ format: 'date-time', description: 'RFC 3339; in the future' })),
  },
  { additionalProperties: false },
);
export type CreateApiKeyBody = Static<typeof CreateApiKeyBody>;

export const CreateTenantKeyBody = Type.Object(
  {
    name: Name,
    scopes: Type.Array(ScopeName, { minItems: 1, maxItems: SCOPES.length, uniqueItems: true }),
    expires_at: Type.Optional(Type.String({ format: 'date-time' })),
    user_id: Type.Optional(Type.String({ pattern: ID_REGEX, description: 'Recorded as the key owner (default admin)' })),
  },
  { additionalProperties: false },
);
export type CreateTenantKeyBody = Static<typeof CreateTenantKeyBody>;

export const ApiKeyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  /** The non-secret lookup prefix, to recognise a key; never enough to use it. */
  prefix: Type.String(),
  tenant_id: Type.String(),
  user_id: Type.String(),
  scopes: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('expired')]),
  created_at: Type.String(),
  expires_at: Nullable(Type.String()),
  revoked_at: Nullable(Type.String()),
  /** The creating credential's subject (an API key's id, a JWT's sub); null for the bootstrap key and keys older than the field. */
  created_by: Nullable(Type.String()),
});
export type ApiKeyView = Static<typeof ApiKeyView>;

/** A new key: the only response that ever carries the secret. */
export const CreatedApiKey = Type.Object({
  ...ApiKeyView.properties,
  key: Type.Union([Type.String(), Type.Null()], { description: 'The API key. Shown once: store it now. null in a replay of this answer (Idempotent-Replayed: true): secrets are never stored.' }),
});
export type CreatedApiKey = Static<typeof CreatedApiKey>;

export const ApiKeyList = Type.Object({ api_keys: Type.Array(ApiKeyView), total_count: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });
export type ApiKeyList = Static<typeof ApiKeyList>;

export const RateLimitBody = Type.Object(
  {
    per_minute: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Submit/control requests per minute (reads get a multiple)' }),
    burst: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Bucket size: requests allowed at once' }),
  },
  { additionalProperties: false },
);
export type RateLimitBody = Static<typeof RateLimitBody>;

const MaxRunning = Type.Integer({
  minimum: 1, maximum: 1_000_000,
  description: "At most this many of the tenant's tasks RUNNING at once, across every worker process (its other tasks wait QUEUED)",
});

export const Me = Type.Object({
  tenant_id: Type.String(),
  user_id: Type.String(),
  principal_type: Type.Union([Type.Literal('api_key'), Type.Literal('jwt'), Type.Literal('anonymous')]),
  /** The key id for API keys, the `sub` claim for JWTs. */
  subject: Type.String(),
  scopes: Type.Array(Type.String()),
  /** The caller's budgets; null when rate limiting is off. */
  rate_limit: Nullable(Type.Object({ per_minute: Type.Integer(), burst: Type.Integer(), read_per_minute: Type.Integer(), read_burst: Type.Integer() })),
});
export type Me = Static<typeof Me>;

export const CreateTenantBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' }),
    tenant_id: Type.Optional(Type.String({ pattern: ID_REGEX, description: 'Default: generated (tnt_…)' })),
    rate_limit: Type.Optional(RateLimitBody),
    max_running: Type.Optional(MaxRunning),
  },
  { additionalProperties: false },
);
export type CreateTenantBody = Static<typeof CreateTenantBody>;

export const UpdateTenantBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' })),
    rate_limit: Type.Optional(Nullable(RateLimitBody)),
    max_running: Type.Optional(Nullable(MaxRunning)),
  },
  { additionalProperties: false },
);
export type UpdateTenantBody = Static<typeof UpdateTenantBody>;

export const TenantView = Type.Object({
  tenant_id: Type.String(),
  name: Type.String(),
  rate_limit: Nullable(Type.Object({ per_minute: Type.Integer(), burst: Type.Integer() })),
  /** At most this many of the tenant's tasks RUNNING at once, across every worker; null: no cap. */
  max_running: Nullable(Type.Integer()),
  created_at: Type.String(),
});
export type TenantView = Static<typeof TenantView>;

export const TenantList = Type.Object({ tenants: Type.Array(TenantView), total_count: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() });
export type TenantList = Static<typeof TenantList>;
