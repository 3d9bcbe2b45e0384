// Security and traffic-control settings (JWT, rate limits, idempotency, stream caps, header
// timeout), read once with the rest of the configuration. docs/security.md explains each one.
import { isIP } from 'node:net';
import { bool, ConfigError, int, MAX_TIMER_MS, oneOf } from './parse.js';

/** Submit/control budget per principal: 60 requests a minute… */
export const DEFAULT_RATE_LIMIT_PER_MIN = 60;
/** …with bursts of up to 10. */
export const DEFAULT_RATE_LIMIT_BURST = 10;
/** Reads and streams get their own bucket, this many times the submit budget (600/min, burst 100). */
export const DEFAULT_READ_RATE_LIMIT_MULTIPLIER = 10;
/**
 * What limited routes do while the shared (Redis) bucket store is unreachable: `local` takes from
 * this process's own buckets (same budgets, so each node enforces them alone: N nodes allow up to
 * N budgets), `closed` answers 503, `open` lets every request through unlimited.
 */
export const RATE_LIMIT_FAIL_MODES = ['local', 'closed', 'open'] as const;
export type RateLimitFailMode = (typeof RATE_LIMIT_FAIL_MODES)[number];
/** A Redis outage (or our own loop lagging past its 500 ms command timeout) must not lift every limit. */
export const DEFAULT_RATE_LIMIT_FAIL_MODE: RateLimitFailMode = 'local';
/**
 * Whether an unreachable Redis makes an API process's /readiness 503. `required` (default): PRODUCT
 * §3's readiness is "database and Redis reachable". `advisory`: reported as `degraded: …` and still
 * ready (requests succeed meanwhile under the fail mode; a Redis blip then does not take every API
 * process out of its load balancer at once). Under the `closed` fail mode it always gates: limited
 * routes really answer 503 without Redis.
 */
export const READINESS_REDIS_MODES = ['required', 'advisory'] as const;
export type ReadinessRedisMode = (typeof READINESS_REDIS_MODES)[number];
/** Idempotency records are kept (and replayed) for 24 h. */
export const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000;
/** A year: stored responses are kept no longer (a larger interval overflows timestamps). */
const MAX_IDEMPOTENCY_TTL_MS = 365 * 86_400_000;
/** Expired idempotency records are deleted this often. */
export const DEFAULT_IDEMPOTENCY_CLEANUP_INTERVAL_MS = 600_000;
/** Concurrent SSE/WebSocket streams per principal and API process. */
export const DEFAULT_MAX_STREAMS_PER_PRINCIPAL = 1000;
/** A verified API key is reused for 2 s without a lookup (revocations evict it sooner). */
export const DEFAULT_AUTH_CACHE_MS = 2_000;
/** Failed authentications a client address may make: 120 a minute, in bursts of up to 60. */
export const DEFAULT_AUTH_FAILURES_PER_MIN = 120;
export const DEFAULT_AUTH_FAILURE_BURST = 60;
/** Time to receive a request's headers (slow-header clients are cut off after this). */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Leeway for exp/nbf/iat of JWTs. */
export const DEFAULT_JWT_CLOCK_TOLERANCE_S = 30;

/** Algorithms a deployment may pin; HS* verify with the shared secret, the others through the JWKS. */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export interface JwtConfig {
  /** The one accepted `alg`; every other (including `none`) is refused. */
  readonly algorithm: JwtAlgorithm;
  readonly secret: string | undefined;
  readonly jwksUrl: string | undefined;
  readonly issuer: string;
  readonly audience: string;
  readonly clockToleranceS: number;
}

export interface SecurityConfig {
  /** Present when JWTs are accepted (TASKGATE_JWT_SECRET or TASKGATE_JWKS_URL set). */
  readonly jwt: JwtConfig | undefined;
  /** Submit/control budget per principal per minute; 0 turns rate limiting off. */
  readonly rateLimitPerMin: number;
  readonly rateLimitBurst: number;
  readonly readRateLimitMultiplier: number;
  /** Redis unreachable: per-process buckets (`local`, default), 503 (`closed`) or no limit (`open`). */
  readonly rateLimitFailMode: RateLimitFailMode;
  /** Redis unreachable: /readiness 503 on an API process (`required`, default) or `degraded` (`advisory`). */
  readonly readinessRedis: ReadinessRedisMode;
  /** `/metrics` without credentials (a scraper on a private network); else it needs the `admin` scope. */
  readonly metricsPublic: boolean;
  readonly idempotencyTtlMs: number;
  readonly idempotencyCleanupIntervalMs: number;
  readonly maxStreamsPerPrincipal: number;
  /**
   * How long a verified API key's principal is reused without a lookup (0: look up every
   * request). Revocation evicts it at once on the revoking node and, by NOTIFY, on the others.
   */
  readonly authCacheMs: number;
  /** Failed authentications per client address and minute before 429 (0: no limit), and the burst. */
  readonly authFailuresPerMin: number;
  readonly authFailureBurst: number;
  /** Capped at the request timeout (Node refuses a longer one). */
  readonly headersTimeoutMs: number;
  /**
   * Reverse proxies whose X-Forwarded-For is believed, for the client address (failed-auth limits,
   * logs): a hop count, or addresses/CIDRs (and the names loopback, linklocal, uniquelocal).
   * Undefined: the connection's own address, the header ignored.
   */
  readonly trustProxy: number | readonly string[] | undefined;
}

type Env = Record<string, string | undefined>;

const nonEmpty = (raw: string | undefined): string | undefined => (raw !== undefined && raw.trim() !== '' ? raw.trim() : undefined);

function loopbackUrl(url: URL): boolean {
  const h = url.hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function loadJwt(env: Env): JwtConfig | undefined {
  const secret = env.TASKGATE_JWT_SECRET === '' ? undefined : env.TASKGATE_JWT_SECRET;
  const jwksUrl = nonEmpty(env.TASKGATE_JWKS_URL);
  const alg = nonEmpty(env.TASKGATE_JWT_ALGORITHM);
  if (!secret && !jwksUrl) {
    if (alg) throw new ConfigError('TASKGATE_JWT_ALGORITHM is set but neither TASKGATE_JWT_SECRET nor TASKGATE_JWKS_URL is');
    return undefined;
  }
  if (secret && jwksUrl) throw new ConfigError('set TASKGATE_JWT_SECRET (HS*) or TASKGATE_JWKS_URL (RS*/PS*/ES*/EdDSA), not both');
  const algorithm = (alg ?? (secret ? 'HS256' : 'RS256')) as JwtAlgorithm;
  if (!JWT_ALGORITHMS.includes(algorithm)) throw new ConfigError(`TASKGATE_JWT_ALGORITHM must be one of ${JWT_ALGORITHMS.join(', ')}, got ${alg}`);
  if (algorithm.startsWith('HS') && !secret) throw new ConfigError(`TASKGATE_JWT_ALGORITHM ${algorithm} needs TASKGATE_JWT_SECRET`);
  if (!algorithm.startsWith('HS') && !jwksUrl) throw new ConfigError(`TASKGATE_JWT_ALGORITHM ${algorithm} needs TASKGATE_JWKS_URL`);
  if (jwksUrl) {
    let url: URL;
    try {
      url = new URL(jwksUrl);
    } catch {
      throw new ConfigError(`TASKGATE_JWKS_URL is not a URL: ${jwksUrl}`);
    }
    // keys fetched in clear text could be swapped by anyone on the path
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopbackUrl(url))) {
      throw new ConfigError('TASKGATE_JWKS_URL must be https (plain http is accepted for loopback addresses only)');
    }
  }
  // a token is accepted only for this deployment: from the configured issuer, for the configured
  // audience (a token the same IdP minted for another service must not work here)
  const issuer = nonEmpty(env.TASKGATE_JWT_ISSUER);
  const audience = nonEmpty(env.TASKGATE_JWT_AUDIENCE);
  if (!issuer || !audience) {
    throw new ConfigError('JWT auth needs TASKGATE_JWT_ISSUER and TASKGATE_JWT_AUDIENCE: every token is checked against both');
  }
  return Object.freeze({
    algorithm,
    secret,
    jwksUrl,
    issuer,
    audience,
    clockToleranceS: int('TASKGATE_JWT_CLOCK_SKEW_S', env.TASKGATE_JWT_CLOCK_SKEW_S, DEFAULT_JWT_CLOCK_TOLERANCE_S, 0, 3600),
  });
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TASKGATE_TRUST_PROXY: off (unset), a hop count 1–10, or a list of proxy addresses/CIDRs. */
export function parseTrustProxy(raw: string | undefined): number | readonly string[] | undefined {
  const v = raw?.trim();
  if (!v || v === 'false' || v === '0') return undefined;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops > 10) throw new ConfigError(`TASKGATE_TRUST_PROXY hop count must be 1-10, got ${v}`);
    return hops;
  }
  if (v === 'true') {
    // every client could then choose its own address (X-Forwarded-For is theirs to write)
    throw new ConfigError('TASKGATE_TRUST_PROXY=true would believe any client\'s X-Forwarded-For: give the proxies\' addresses (10.0.0.0/8, loopback, …) or a hop count');
  }
  const entries = v.split(',').map((e) => e.trim()).filter(Boolean);
  for (const e of entries) {
    if (PROXY_NAMES.has(e)) continue;
    const [addr, prefix, extra] = e.split('/');
    const family = isIP(addr ?? '');
    const okPrefix = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (!family || !okPrefix || extra !== undefined) {
      throw new ConfigError(`TASKGATE_TRUST_PROXY: ${e} is not an IP address, a CIDR range or one of loopback, linklocal, uniquelocal`);
    }
  }
  return Object.freeze(entries);
}

/**
 * TASKGATE_RATE_LIMIT_FAIL_MODE, or the older TASKGATE_RATE_LIMIT_FAIL_CLOSED: `true` is an alias
 * of `closed`, `false` means "not closed" and so the default (it never chose open, which was merely
 * the default then). Both set and disagreeing stops the start instead of one silently winning.
 */
export function parseRateLimitFailMode(env: Env): RateLimitFailMode {
  const rawMode = nonEmpty(env.TASKGATE_RATE_LIMIT_FAIL_MODE)?.toLowerCase();
  const mode = rawMode === undefined ? undefined : oneOf('TASKGATE_RATE_LIMIT_FAIL_MODE', rawMode, RATE_LIMIT_FAIL_MODES, DEFAULT_RATE_LIMIT_FAIL_MODE);
  const legacy = nonEmpty(env.TASKGATE_RATE_LIMIT_FAIL_CLOSED);
  if (legacy === undefined) return mode ?? DEFAULT_RATE_LIMIT_FAIL_MODE;
  const closed = bool('TASKGATE_RATE_LIMIT_FAIL_CLOSED', legacy);
  if (mode !== undefined && closed !== (mode === 'closed')) {
    throw new ConfigError(`TASKGATE_RATE_LIMIT_FAIL_CLOSED=${legacy} contradicts TASKGATE_RATE_LIMIT_FAIL_MODE=${mode}: set only TASKGATE_RATE_LIMIT_FAIL_MODE (local, closed or open)`);
  }
  return mode ?? (closed ? 'closed' : DEFAULT_RATE_LIMIT_FAIL_MODE);
}

export function loadSecurityConfig(env: Env): SecurityConfig {
  return Object.freeze({
    jwt: loadJwt(env),
    rateLimitPerMin: int('TASKGATE_RATE_LIMIT_PER_MIN', env.TASKGATE_RATE_LIMIT_PER_MIN, DEFAULT_RATE_LIMIT_PER_MIN, 0, 1_000_000_000),
    rateLimitBurst: int('TASKGATE_RATE_LIMIT_BURST', env.TASKGATE_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_BURST, 1, 1_000_000_000),
    readRateLimitMultiplier: int('TASKGATE_READ_RATE_LIMIT_MULTIPLIER', env.TASKGATE_READ_RATE_LIMIT_MULTIPLIER, DEFAULT_READ_RATE_LIMIT_MULTIPLIER, 1, 1000),
    rateLimitFailMode: parseRateLimitFailMode(env),
    readinessRedis: oneOf('TASKGATE_READINESS_REDIS', env.TASKGATE_READINESS_REDIS, READINESS_REDIS_MODES, 'required'),
    metricsPublic: bool('TASKGATE_METRICS_PUBLIC', env.TASKGATE_METRICS_PUBLIC),
    idempotencyTtlMs: int('TASKGATE_IDEMPOTENCY_TTL_MS', env.TASKGATE_IDEMPOTENCY_TTL_MS, DEFAULT_IDEMPOTENCY_TTL_MS, 1000, MAX_IDEMPOTENCY_TTL_MS),
    idempotencyCleanupIntervalMs: int(
      'TASKGATE_IDEMPOTENCY_CLEANUP_INTERVAL_MS', env.TASKGATE_IDEMPOTENCY_CLEANUP_INTERVAL_MS, DEFAULT_IDEMPOTENCY_CLEANUP_INTERVAL_MS, 1000, MAX_TIMER_MS,
    ),
    maxStreamsPerPrincipal: int('TASKGATE_MAX_STREAMS_PER_PRINCIPAL', env.TASKGATE_MAX_STREAMS_PER_PRINCIPAL, DEFAULT_MAX_STREAMS_PER_PRINCIPAL, 1),
    authCacheMs: int('TASKGATE_AUTH_CACHE_MS', env.TASKGATE_AUTH_CACHE_MS, DEFAULT_AUTH_CACHE_MS, 0, 60_000),
    trustProxy: parseTrustProxy(env.TASKGATE_TRUST_PROXY),
    authFailuresPerMin: int('TASKGATE_AUTH_FAILURES_PER_MIN', env.TASKGATE_AUTH_FAILURES_PER_MIN, DEFAULT_AUTH_FAILURES_PER_MIN, 0, 1_000_000),
    authFailureBurst: int('TASKGATE_AUTH_FAILURE_BURST', env.TASKGATE_AUTH_FAILURE_BURST, DEFAULT_AUTH_FAILURE_BURST, 1, 1_000_000),
    headersTimeoutMs: int('TASKGATE_HEADERS_TIMEOUT_MS', env.TASKGATE_HEADERS_TIMEOUT_MS, DEFAULT_HEADERS_TIMEOUT_MS, 1, MAX_TIMER_MS),
  });
}
