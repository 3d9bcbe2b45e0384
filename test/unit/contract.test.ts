import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ERRORS } from '../../src/contract/errors.js';
import { sseEventName } from '../../src/contract/events.js';
import { parseJsonBody, scanJson } from '../../src/api/json-parser.js';

const depth = (text: string) => scanJson(text).depth;
import { loadConfig, ConfigError } from '../../src/config/index.js';
import { redactUrl } from '../../src/logger.js';

describe('docs/errors.md', () => {
  it('lists exactly the codes and statuses of the error table', () => {
    const md = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...md.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(Object.entries(ERRORS).map(([k, v]) => [k, v.status])));
  });
});

describe('wire names', () => {
  it('maps event types to the reference SSE names', () => {
    expect(sseEventName('LLM_PARTIAL')).toBe('thread.message.delta');
    expect(sseEventName('LLM_OUTPUT')).toBe('thread.message.completed');
    expect(sseEventName('ERROR_OCCURRED')).toBe('error');
    expect(sseEventName('WORKFLOW_PAUSED')).toBe('workflow.paused');
    expect(sseEventName('PROGRESS')).toBe('PROGRESS');
  });
});

describe('json depth', () => {
  it('counts nesting without being fooled by strings', () => {
    expect(depth('{}')).toBe(1);
    expect(depth('{"a":[{"b":1}]}')).toBe(3);
    expect(depth('{"a":"[[[[\\"[["}')).toBe(1);
    expect(depth('['.repeat(100) + ']'.repeat(100))).toBe(100);
  });
  it('refuses a __proto__ key however it is spelled, and parses the rest as JSON.parse does', () => {
    const plain = '{"task_definition_id":"noop","input":{"a":[1,{"b":"x"}],"s":"\\"q\\""}}';
    expect(parseJsonBody(plain)).toEqual(JSON.parse(plain));
    for (const text of ['{"__proto__":{"admin":true},"a":1}', '{"\\u005f_proto__":{"admin":true},"a":1}', '{"a":1,"n":[{"__proto__":{"admin":true}}]}']) {
      expect(() => parseJsonBody(text), text).toThrow();
    }
    expect(parseJsonBody('{"k":"__proto__"}')).toEqual({ k: '__proto__' });
    expect(parseJsonBody('"\\u00e9t\\u00e9"')).toBe('été');
    // numbers a double cannot hold would parse as Infinity (stored as null): refused
    for (const text of ['{"x":1e309}', '[-1E+400]', `{"a":{"b":${'9'.repeat(309)}}}`]) {
      expect(scanJson(text).mayOverflow).toBe(true);
      expect(() => parseJsonBody(text)).toThrow();
    }
    for (const text of ['{"x":1e308,"y":-2.5E-300,"z":true}', `{"s":"1e999 ${'9'.repeat(400)}"}`, `[${'9'.repeat(308)}]`]) {
      expect(parseJsonBody(text)).toEqual(JSON.parse(text));
    }
    expect(scanJson('{"s":"1e999"}').mayOverflow).toBe(false);
    expect(() => parseJsonBody('{"a":')).toThrow();
  });
});

describe('config', () => {
  it('applies defaults', () => {
    const c = loadConfig({}, {});
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', role: 'all', concurrency: 10, dataDir: './.taskgate', leaseMs: 30_000 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(loadConfig({ port: '9000' }, { PORT: '1' }).port).toBe(9000);
  });
  it('refuses bad values and auth-off on a public bind', () => {
    expect(() => loadConfig({ role: 'boss' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({}, { PORT: 'x' })).toThrow(/PORT/);
    expect(() => loadConfig({}, { TASKGATE_AUTH_DISABLED: 'true', HOST: '0.0.0.0' })).toThrow(/loopback/);
    expect(loadConfig({}, { TASKGATE_AUTH_DISABLED: 'true' }).authDisabled).toBe(true);
  });
  it('takes CORS origins as browsers send them, or *; anything else (a trailing slash, no scheme) is refused naming the origin meant', () => {
    expect(loadConfig({}, { TASKGATE_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173,*' }).corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173', '*']);
    expect(() => loadConfig({}, { TASKGATE_CORS_ORIGINS: 'https://app.example.com/' })).toThrow('TASKGATE_CORS_ORIGINS: https://app.example.com/ is not an origin as browsers send it: did you mean https://app.example.com?');
    for (const v of ['notaurl', 'app.example.com', 'ftp://x.example', 'https://app.example.com:443']) {
      expect(() => loadConfig({}, { TASKGATE_CORS_ORIGINS: v }), v).toThrow(/^TASKGATE_CORS_ORIGINS: /);
    }
  });
  it('takes REDIS_URL as the Redis client does (redis://, rediss://, a socket path); another is refused, not read as a socket that is not there', () => {
    for (const v of ['redis://127.0.0.1:6379', 'rediss://user:pw@cache.example:6380/2', '/run/redis/redis.sock']) expect(loadConfig({}, { REDIS_URL: v }).redisUrl, v).toBe(v);
    for (const v of ['http://127.0.0.1:6379', '127.0.0.1:6379', 'localhost', 'redis:/x']) {
      expect(() => loadConfig({}, { REDIS_URL: v }), v).toThrow(/^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
    }
  });
  it('refuses a value it cannot read instead of quietly meaning something else', () => {
    for (const v of ['1', 'TRUE', 'yes', 'on']) expect(loadConfig({}, { TASKGATE_DISABLE_LISTEN: v }).listenNotify, v).toBe(false);
    for (const v of ['0', 'false', 'No', 'off', '']) expect(loadConfig({}, { TASKGATE_DISABLE_LISTEN: v }).listenNotify, v).toBe(true);
    expect(() => loadConfig({}, { TASKGATE_METRICS_PUBLIC: 'enabled' })).toThrow(/TASKGATE_METRICS_PUBLIC must be true or false/);
    expect(() => loadConfig({}, { TASKGATE_AUTH_DISABLED: 'y' })).toThrow(/TASKGATE_AUTH_DISABLED/);
    expect(() => loadConfig({}, { TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'maybe' })).toThrow(/TASKGATE_RATE_LIMIT_FAIL_CLOSED/);
    // the store-down mode: local by default; the older boolean is an alias (true = closed, false = not closed)
    const failMode = (env: Record<string, string>) => loadConfig({}, env).security.rateLimitFailMode;
    expect(failMode({})).toBe('local');
    for (const m of ['local', 'closed', 'open', 'Closed']) expect(failMode({ TASKGATE_RATE_LIMIT_FAIL_MODE: m }), m).toBe(m.toLowerCase());
    expect(failMode({ TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'true' })).toBe('closed');
    expect(failMode({ TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'false' })).toBe('local');
    expect(failMode({ TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'false', TASKGATE_RATE_LIMIT_FAIL_MODE: 'open' })).toBe('open');
    expect(failMode({ TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'yes', TASKGATE_RATE_LIMIT_FAIL_MODE: 'closed' })).toBe('closed');
    expect(() => failMode({ TASKGATE_RATE_LIMIT_FAIL_MODE: 'fallback' })).toThrow('TASKGATE_RATE_LIMIT_FAIL_MODE must be one of local, closed, open, got fallback');
    expect(() => failMode({ TASKGATE_RATE_LIMIT_FAIL_CLOSED: 'true', TASKGATE_RATE_LIMIT_FAIL_MODE: 'open' })).toThrow(/TASKGATE_RATE_LIMIT_FAIL_CLOSED=true contradicts TASKGATE_RATE_LIMIT_FAIL_MODE=open/);
    // readiness needs Redis by default (PRODUCT §3); advisory is the opt-out
    expect(loadConfig({}, {}).security.readinessRedis).toBe('required');
    expect(loadConfig({}, { TASKGATE_READINESS_REDIS: 'advisory' }).security.readinessRedis).toBe('advisory');
    expect(() => loadConfig({}, { TASKGATE_READINESS_REDIS: 'optional' })).toThrow(/TASKGATE_READINESS_REDIS must be one of required, advisory/);
    expect(loadConfig({}, { TASKGATE_METRICS_PUBLIC: 'true' }).security.metricsPublic).toBe(true);
    expect(() => loadConfig({}, { TASKGATE_TAX_RATE: '-1' })).toThrow(/TASKGATE_TAX_RATE must be a number between 0 and 1/);
    expect(() => loadConfig({}, { TASKGATE_TAX_RATE: '8' })).toThrow(/TASKGATE_TAX_RATE/);
    expect(loadConfig({}, { TASKGATE_TAX_RATE: '0.2' }).taxRate).toBe(0.2);
    expect(() => loadConfig({}, { LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent/);
    expect(loadConfig({}, { LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
    expect(() => loadConfig({}, { TASKGATE_ROLE: 'both' })).toThrow(/--role\/TASKGATE_ROLE must be one of api, worker, all/);
    // empty counts as unset everywhere, the claim window included (unset: off on PGlite)
    expect(loadConfig({}, { TASKGATE_CLAIM_WINDOW_MS: '' }).claimWindowMs).toBeUndefined();
    // … and blank too, whatever reads it: `HOST=` bound every interface, `TASKGATE_DATA_DIR=` ran
    // an in-memory database, `PORT=' '` a random port, a blank rate limit turned limits off
    for (const blank of ['', ' ', '\t']) {
      const c = loadConfig({}, { HOST: blank, TASKGATE_DATA_DIR: blank, PORT: blank, TASKGATE_RATE_LIMIT_PER_MIN: blank, TASKGATE_REQUEST_TIMEOUT_MS: blank });
      expect(c, JSON.stringify(blank)).toMatchObject({ host: '127.0.0.1', dataDir: './.taskgate', port: 8080, requestTimeoutMs: 30_000 });
      expect(c.security.rateLimitPerMin, JSON.stringify(blank)).toBe(60);
    }
    // numbers are decimal as written: hex, binary and the like are refused, spaces around allowed
    for (const bad of ['0x10', '0b11', '0o7', 'Infinity', '1_000', '10 0']) {
      expect(() => loadConfig({}, { TASKGATE_CONCURRENCY: bad }), bad).toThrow(/--concurrency\/TASKGATE_CONCURRENCY must be an integer between 1 and 10000/);
    }
    expect(loadConfig({}, { TASKGATE_CONCURRENCY: ' 16 ' }).concurrency).toBe(16);
    expect(loadConfig({}, { TASKGATE_BODY_LIMIT_BYTES: '2e6' }).bodyLimitBytes).toBe(2_000_000);
    expect(() => loadConfig({}, { TASKGATE_TAX_RATE: '0x0' })).toThrow(/TASKGATE_TAX_RATE/);
    expect(loadConfig({}, { TASKGATE_CLAIM_WINDOW_MS: '0' }).claimWindowMs).toBe(0);
    // an admin key the API could never accept would lock the operator out of a fresh install
    for (const bad of ['abc123', 'my.admin.secret-2026', 'short_key_15chr', 'has space in the key!!']) {
      expect(() => loadConfig({}, { TASKGATE_ADMIN_KEY: bad }), bad).toThrow(/TASKGATE_ADMIN_KEY must be 16–512 characters/);
    }
    expect(loadConfig({}, { TASKGATE_ADMIN_KEY: 'sk_test_admin_key_0123456789abcdef' }).adminKey).toBe('sk_test_admin_key_0123456789abcdef');
    expect(loadConfig({}, {}).databasePoolSize).toBe(20);
    // a Node timer longer than 2^31 − 1 ms fires after 1 ms: a monthly sweep ran a thousand times a second
    expect(() => loadConfig({}, { TASKGATE_RETENTION_INTERVAL_MS: '3000000000' })).toThrow(/TASKGATE_RETENTION_INTERVAL_MS must be an integer between 100 and 1717986917/);
    expect(() => loadConfig({}, { TASKGATE_IDEMPOTENCY_CLEANUP_INTERVAL_MS: '3000000000' })).toThrow(/between 1000 and 2147483647/);
    expect(() => loadConfig({}, { TASKGATE_POLL_INTERVAL_MS: '2147483647' })).toThrow(/TASKGATE_POLL_INTERVAL_MS/);
    expect(() => loadConfig({}, { TASKGATE_REQUEST_TIMEOUT_MS: '2147483648' })).toThrow(/TASKGATE_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({}, { TASKGATE_DEFAULT_TIMEOUT_MS: '86400001' })).toThrow(/TASKGATE_DEFAULT_TIMEOUT_MS/);
    expect(loadConfig({}, { TASKGATE_RETENTION_INTERVAL_MS: '1717986917' }).retentionIntervalMs).toBe(1_717_986_917);
    // ten thousand years of retention made every sweep fail on a timestamp out of range
    expect(() => loadConfig({}, { TASKGATE_TASK_RETENTION: '3650000d' })).toThrow(/at most 36500d/);
    expect(loadConfig({}, { TASKGATE_TASK_RETENTION: '36500d' }).taskRetentionMs).toBe(36_500 * 86_400_000);
    // the schema name reaches SQL: only a plain identifier gets that far
    for (const bad of ['x"; CREATE TABLE public.pwned(i int); --', 'a"b', 'MySchema', 'a'.repeat(64), '1abc', 'pg_temp', 'a-b']) {
      expect(() => loadConfig({}, { TASKGATE_DB_SCHEMA: bad }), bad).toThrow(/TASKGATE_DB_SCHEMA must be 1–63 characters/);
    }
    expect(loadConfig({}, { TASKGATE_DB_SCHEMA: 'tg_one' }).databaseSchema).toBe('tg_one');
    expect(() => loadConfig({}, { TASKGATE_DB_POOL_SIZE: '0' })).toThrow(/TASKGATE_DB_POOL_SIZE must be an integer between 1 and 1000/);
  });
  it('reads the task retention as a duration with a unit, off by default', () => {
    const retention = (v?: string) => loadConfig({}, v === undefined ? {} : { TASKGATE_TASK_RETENTION: v }).taskRetentionMs;
    expect(retention()).toBe(0);
    expect(retention('0')).toBe(0);
    expect(retention('off')).toBe(0);
    expect(retention('30d')).toBe(30 * 86_400_000);
    expect(retention('12h')).toBe(12 * 3_600_000);
    expect(retention('90m')).toBe(90 * 60_000);
    expect(retention('45s')).toBe(45_000);
    expect(retention('1500ms')).toBe(1500);
    for (const bad of ['30', '-1d', '1.5d', 'd', '30 days', '0d', '99999999999999d']) {
      expect(() => retention(bad), bad).toThrow(/TASKGATE_TASK_RETENTION must be a duration/);
    }
    expect(loadConfig({}, {}).retentionIntervalMs).toBe(600_000);
    expect(() => loadConfig({}, { TASKGATE_RETENTION_INTERVAL_MS: '5' })).toThrow(/TASKGATE_RETENTION_INTERVAL_MS/);
  });
});

describe('log redaction', () => {
  it('hides credentials in URLs', () => {
    expect(redactUrl('/api/v1/stream/sse?workflow_id=t&api_key=sk_secret&token=abc')).toBe('/api/v1/stream/sse?workflow_id=t&api_key=[REDACTED]&token=[REDACTED]');
    // `;` as a pair separator (the audit's `?workflow_id=T;api_key=sk_…`)
    expect(redactUrl('/api/v1/stream/sse?workflow_id=t;api_key=sk_secret&x=1;token=abc')).toBe('/api/v1/stream/sse?workflow_id=t;api_key=[REDACTED]&x=1;token=[REDACTED]');
  });
});
