// Authentication and scope checks for every non-public route. A route declares what it needs in
// its config: `{ scope: 'tasks:read' }`, or `{ public: true }` for health, readiness, OpenAPI.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../contract/errors.js';
import { verifyApiKey } from '../auth/api-keys.js';
import { hasScope, type Principal, type Scope } from '../auth/scopes.js';
import type { Queryable } from '../storage/db.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Scope the route requires. */
    scope?: Scope;
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
}

export function apiKeyAuthenticator(db: Queryable): Authenticator {
  return (credential) => verifyApiKey(db, credential);
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

export function registerAuth(app: FastifyInstance, authenticate: Authenticator, opts: { disabled: boolean; anonymous?: Principal }): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config;
    if (!req.routeOptions.url || cfg.public) return;
    if (opts.disabled && opts.anonymous) {
      req.principal = opts.anonymous;
    } else {
      const credential = credentialFrom(req, cfg.queryAuth === true);
      if (!credential) throw unauthorized('Missing credentials: send X-API-Key or Authorization: Bearer');
      const principal = await authenticate(credential);
      if (!principal) throw unauthorized('Invalid, expired or revoked credentials');
      req.principal = principal;
    }
    if (cfg.scope && !hasScope(req.principal.scopes, cfg.scope)) {
      throw new ApiError('FORBIDDEN', `Missing required scope: ${cfg.scope}`, { required_scope: cfg.scope });
    }
  });
}
