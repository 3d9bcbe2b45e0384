// JWT bearer tokens (PRODUCT.md §3 "Auth and keys"): HS* with a shared secret or RS/PS/ES/EdDSA
// through a JWKS URL, one algorithm pinned by configuration (so `alg: none` and HS/RS confusion
// are refused by jose before any key is used), issuer/audience checked when configured.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { ApiError } from '../contract/errors.js';
import type { JwtConfig } from '../config/security.js';
import type { Queryable } from '../storage/db.js';
import { tenantsGet } from '../storage/queries/tenants.js';
import { isScope, type Principal } from './scopes.js';

/** A JWS in compact form: three base64url segments. API keys never contain a dot. */
const JWT_SHAPE = /^[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*$/;
/** JWKS fetch: give up after 5 s, refetch at most every 30 s on an unknown `kid`, refresh hourly. */
const JWKS_TIMEOUT_MS = 5_000;
const JWKS_COOLDOWN_MS = 30_000;
const JWKS_MAX_AGE_MS = 3_600_000;
/** Tokens longer than this are refused unread (8 KiB covers any sane claim set). */
const MAX_TOKEN_CHARS = 8192;
const CLAIM_ID = /^[A-Za-z0-9:_\-.@|]{1,256}$/;
/** The latest instant a Date holds, in seconds (8.64e15 ms): `exp` 1e20 or 1e309 (Infinity) is no instant. */
const MAX_DATE_S = 8.64e12;

/** A NumericDate claim that is absent or a finite number of seconds a Date can hold. */
const instantOrAbsent = (v: unknown): boolean => v === undefined || (typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_DATE_S);

export function looksLikeJwt(credential: string): boolean {
  return credential.length <= MAX_TOKEN_CHARS && JWT_SHAPE.test(credential);
}

/** `scopes` (or the OAuth `scope`) as a space-separated string or an array; unknown scopes are dropped. */
export function scopesFromClaims(payload: JWTPayload): string[] {
  const raw = payload.scopes ?? payload.scope;
  const list = typeof raw === 'string' ? raw.split(/\s+/) : Array.isArray(raw) ? raw.filter((s): s is string => typeof s === 'string') : [];
  return [...new Set(list.filter(isScope))];
}

export type JwtVerifier = (token: string) => Promise<Principal | undefined>;

/** The identity provider's key set could not be had: no answer in time, an HTTP error, not a key set. */
class KeySetUnavailable extends Error {}

/**
 * The remote key set, telling its own failures apart from the token's: jose reports a key set
 * answered with a 503 (or not JSON) as a plain JOSEError, like a bad token — an IdP outage read as
 * 401s, counted as failed authentications until the address (a proxy's, shared) was refused 429.
 * No key for the token's `kid` is the token's problem.
 */
function remoteKeys(url: string): (...args: Parameters<ReturnType<typeof createRemoteJWKSet>>) => ReturnType<ReturnType<typeof createRemoteJWKSet>> {
  const keys = createRemoteJWKSet(new URL(url), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS });
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
      throw new KeySetUnavailable('key set unreachable', { cause: err });
    }
  };
}

export function createJwtVerifier(cfg: JwtConfig, db: Queryable): JwtVerifier {
  const key = cfg.secret ? new TextEncoder().encode(cfg.secret) : remoteKeys(cfg.jwksUrl!);
  const options = {
    algorithms: [cfg.algorithm],
    issuer: cfg.issuer,
    audience: cfg.audience,
    clockTolerance: cfg.clockToleranceS,
    requiredClaims: ['sub', 'exp'],
  };
  return async (token) => {
    if (!looksLikeJwt(token)) return undefined;
    let payload: JWTPayload;
    try {
      payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (err) {
      // the key set could not be fetched: the token may be fine, we cannot tell
      if (err instanceof KeySetUnavailable) {
        throw new ApiError('UNAVAILABLE', 'Cannot verify bearer tokens right now (key set unreachable)', undefined, { 'retry-after': '5' });
      }
      return undefined;
    }
    // jose checks only that exp/nbf/iat are numbers: one past the Date range (1e20, or 1e309, which
    // JSON.parse makes Infinity) made an Invalid Date expiry — a 500 on key creation, a stream
    // timer re-armed every 1 ms
    if (![payload.exp, payload.nbf, payload.iat].every(instantOrAbsent)) return undefined;
    // jose checks iat is a number, not that it has passed: a token issued in the future is refused
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + cfg.clockToleranceS) return undefined;
    const tenantId = payload.tenant_id;
    const sub = payload.sub;
    if (typeof tenantId !== 'string' || !CLAIM_ID.test(tenantId) || typeof sub !== 'string' || !CLAIM_ID.test(sub)) return undefined;
    const tenant = await tenantsGet(db, tenantId);
    if (!tenant) return undefined;
    // `exp` is required (jose checked it is a number)
    const expiresAt = new Date(payload.exp! * 1000);
    return { kind: 'jwt', tenantId, userId: sub, subjectId: sub, scopes: scopesFromClaims(payload), rateLimit: tenant.rate_limit, expiresAt };
  };
}
