// Authentication and scope checks for every non-public route. A route declares what it needs in
// its config: `{ scope: 'tasks:read' }`, `{ authenticated: true }` (any valid credential, e.g.
// /auth/me), or `{ public: true }` for health, readiness, OpenAPI. A route that declares none of
// them is treated as admin-only (fail closed) and logged at startup.
import { addressBucket, type AuthFailureLimiter } from '../auth/auth-failures.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../contract/errors.js';
import { createApiKeyVerifier, verifyApiKey } from '../auth/api-keys.js';
import { createJwtVerifier, looksLikeJwt } from '../auth/jwt.js';
import { hasScope, type Principal, type Scope } from '../auth/scopes.js';
import type { JwtConfig } from '../config/security.js';
import type { Queryable } from '../storage/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Scope the route requires. */
    scope?: Scope;
    /** Any valid credential, no particular scope. */
    authenticated?: boolean;
    /** No credential needed. */
    public?: boolean;
    /** Also accept the credential as `api_key`/`token` query parameter (EventSource cannot send headers). */
    queryAuth?: boolean;
  }
}

export const WWW_AUTHENTICATE = 'Bearer realm="taskgate", charset="UTF-8"';

export interface Authenticator {
  /** Resolves a presented credential (API key or JWT) to a principal, or undefined. */
  (credential: string): Promise<Principal | undefined>;
  /** Forgets what is cached about one API key id, or about every credential (`*`). */
  invalidate?(keyId: string): void;
}

export function apiKeyAuthenticator(db: Queryable): Authenticator {
  return (credential) => verifyApiKey(db, credential);
}

/** API keys always; JWTs too when configured. The two are told apart by shape (a JWT has dots, a key none). */
export function createAuthenticator(db: Queryable, jwt: JwtConfig | undefined, opts: { cacheMs?: number } = {}): Authenticator {
  const verifyJwt = jwt ? createJwtVerifier(jwt, db) : undefined;
  const verifyKey = createApiKeyVerifier(db, { cacheMs: opts.cacheMs });
  const authenticate: Authenticator = async (credential) => {
    if (looksLikeJwt(credential)) return verifyJwt ? verifyJwt(credential) : undefined;
    return verifyKey(credential);
  };
  authenticate.invalidate = verifyKey.invalidate;
  return authenticate;
}

/** What a route requires, as the auth hook enforces it. */
export interface RouteAccess {
  method: string;
  url: string;
  access: 'public' | 'authenticated' | 'scope';
  /** The required scope (`admin` for routes that declare nothing). */
  scope?: Scope;
  /** False when the route declared neither scope, authenticated nor public (it is admin-only). */
  declared: boolean;
  queryAuth: boolean;
}

type AccessConfig = { scope?: Scope; authenticated?: boolean; public?: boolean; queryAuth?: boolean } | undefined;
const routeTables = new WeakMap<FastifyInstance, { method: string; route: { url: string; config?: unknown } }[]>();

/** Every route registered after registerAuth, with what it requires (tests generate cases from it). */
export function routeTable(app: FastifyInstance): RouteAccess[] {
  // read the config now, not at registration: later onRoute hooks may still have changed it
  return (routeTables.get(app) ?? []).map(({ method, route }) => {
    const cfg = route.config as AccessConfig;
    const base = { method, url: route.url, queryAuth: cfg?.queryAuth === true };
    if (cfg?.public) return { ...base, access: 'public', declared: true };
    if (cfg?.scope) return { ...base, access: 'scope', scope: cfg.scope, declared: true };
    if (cfg?.authenticated) return { ...base, access: 'authenticated', declared: true };
    return { ...base, access: 'scope', scope: 'admin', declared: false };
  });
}

export function credentialFrom(req: FastifyRequest, queryAuth: boolean): string | undefined {
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey) return apiKey.trim();
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1]!.trim();
  }
  if (queryAuth) {
    const q = req.query as Record<string, unknown> | undefined;
    const v = q?.api_key ?? q?.token;
    if (typeof v === 'string' && v) return v;
  }
  return undefined;
}

const unauthorized = (message: string) => new ApiError('UNAUTHORIZED', message, undefined, { 'www-authenticate': WWW_AUTHENTICATE });

export function registerAuth(
  app: FastifyInstance, authenticate: Authenticator, opts: { disabled: boolean; anonymous?: Principal; failures?: AuthFailureLimiter },
): void {
  app.decorateRequest('principal', null as unknown as Principal);
  const table: { method: string; route: { url: string; config?: unknown } }[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (route) => {
    for (const method of Array.isArray(route.method) ? route.method : [route.method]) table.push({ method, route });
  });
  app.addHook('onReady', async () => {
    for (const r of routeTable(app)) {
      if (!r.declared) app.log.warn({ route: `${r.method} ${r.url}` }, 'route declares no scope: only admin may call it');
    }
  });
  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config;
    if (!req.routeOptions.url || cfg.public) return;
    if (opts.disabled && opts.anonymous) {
      req.principal = opts.anonymous;
    } else {
      const credential = credentialFrom(req, cfg.queryAuth === true);
      if (!credential) throw unauthorized('Missing credentials: send X-API-Key or Authorization: Bearer');
      const bucket = addressBucket(req.ip);
      const refused = await opts.failures?.begin(bucket);
      if (refused) {
        // a limited response carries X-RateLimit-* (PRODUCT §3): here the address's failure budget
        throw new ApiError('RATE_LIMITED', 'Too many failed authentication attempts from this address', undefined, {
          'retry-after': String(Math.max(1, Math.ceil(refused.retryAfterMs / 1000))),
          'x-ratelimit-limit': String(opts.failures!.perMinute),
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Math.ceil((Date.now() + refused.resetMs) / 1000)),
        });
      }
      let principal: Principal | undefined;
      let answered = false;
      try {
        principal = await authenticate(credential);
        answered = true;
      } finally {
        // a lookup that could not be made (the key set or the database away: a 503) is no failure
        opts.failures?.end(bucket, answered && principal === undefined);
      }
      if (!principal) throw unauthorized('Invalid, expired or revoked credentials');
      req.principal = principal;
    }
    const needed = cfg.scope ?? (cfg.authenticated ? undefined : 'admin');
    if (needed && !hasScope(req.principal.scopes, needed)) {
      throw new ApiError('FORBIDDEN', `Missing required scope: ${needed}`, { required_scope: needed });
    }
  });
}
