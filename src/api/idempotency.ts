// Idempotency-Key on every POST (PRODUCT.md §3): scoped to tenant + principal + route; the first
// 2xx response is stored for 24 h and replayed byte for byte with `Idempotent-Replayed: true`; the
// same key with another request → 422; while the first is running → 409. Requests refused by
// validation never get here (preHandler runs after validation), and a failed request releases its
// claim, so a corrected retry with the same key works. Routes that create a row in a transaction
// (submits) store the response in that same transaction through `saveInTx`.
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../contract/errors.js';
import type { Db, Queryable } from '../storage/db.js';
import {
  idempotencyKeysComplete, idempotencyKeysDeleteExpired, idempotencyKeysGet, idempotencyKeysInsert, idempotencyKeysRelease,
  idempotencyKeysRenew, idempotencyKeysTakeOver, type IdempotencyScope,
} from '../storage/queries/idempotency.js';

export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;
/** The longest a request's claim is kept locked while it runs (a task's longest timeout is a day). */
const MAX_CLAIM_MS = 25 * 60 * 60 * 1000;
/** Printable ASCII (what a header carries safely), no leading or trailing space. */
const KEY_RE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
/** Response headers that belong to the stored response (the rest are per request). */
const STORED_HEADERS = ['content-type', 'location', 'link', 'x-workflow-id', 'x-session-id'];
/** Expired rows deleted per statement by the cleanup. */
const CLEANUP_BATCH = 1000;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on POSTs that carry an Idempotency-Key and hold its claim. */
    idempotency: IdempotencyHandle | null;
  }
  interface FastifyContextConfig {
    /**
     * Top-level response fields never written to the idempotency store (a new API key's secret):
     * the replay carries them as null. Everything else is replayed byte for byte.
     */
    idempotencyRedact?: string[];
  }
}

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The claim one request holds on its key. */
export class IdempotencyHandle {
  readonly scope: IdempotencyScope;
  readonly lockToken: string;
  readonly ttlMs: number;
  /** The body stored by saveInTx, sent instead of the serialized reply so both are the same bytes. */
  savedBody: string | undefined;
  #settled = false;
  #renewal: NodeJS.Timeout | undefined;

  constructor(scope: IdempotencyScope, lockToken: string, ttlMs: number) {
    this.scope = scope;
    this.lockToken = lockToken;
    this.ttlMs = ttlMs;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** The request's answer is being stored or its claim released: the lock is no longer renewed. */
  settle(): void {
    this.#settled = true;
    clearInterval(this.#renewal);
  }

  /**
   * Keeps the claim's lock from running out while its request runs: a handler may outlast any
   * fixed lock (a chat completion waits for its task, up to the task's timeout), and a retry that
   * found the lock expired took the key over and ran the request a second time. Renewed every
   * third of `lockMs`; a renewal that fails (the database away) is tried again at the next, and
   * only a request whose process died lets its lock expire. At most MAX_CLAIM_MS in all.
   */
  keepLocked(db: Queryable, lockMs: number): void {
    const until = Date.now() + MAX_CLAIM_MS;
    this.#renewal = setInterval(() => {
      if (this.#settled || Date.now() > until) return clearInterval(this.#renewal);
      void idempotencyKeysRenew(db, { ...this.scope, lockToken: this.lockToken, lockMs }).then(
        (held) => held || clearInterval(this.#renewal),
        () => undefined,
      );
    }, Math.max(1, Math.floor(lockMs / 3)));
    this.#renewal.unref();
  }

  /** Stores the response inside the transaction that creates what it describes. */
  async saveInTx(tx: Queryable, res: StoredResponse): Promise<void> {
    const body = JSON.stringify(res.body);
    const headers = { ...lowerKeys(res.headers), 'content-type': 'application/json; charset=utf-8' };
    const ok = await idempotencyKeysComplete(tx, { ...this.scope, lockToken: this.lockToken, statusCode: res.status, headers, body, ttlMs: this.ttlMs });
    if (!ok) throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', 'This Idempotency-Key was taken over by another request');
    this.savedBody = body;
  }
}

function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

/** JSON with sorted keys: `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const obj = value as Record<string, unknown>;
  return '{' + Object.keys(obj).sort().filter((k) => obj[k] !== undefined).map((k) => JSON.stringify(k) + ':' + canonicalJson(obj[k])).join(',') + '}';
}

export function requestHash(method: string, url: string, body: unknown): string {
  return createHash('sha256').update(method).update('\n').update(url).update('\n').update(canonicalJson(body ?? null)).digest('hex');
}

export interface IdempotencyOptions {
  db: Db;
  /** How long a response is kept and replayed (default 24 h). */
  ttlMs: number;
  /** How long a claim holds before a crashed request's key can be taken over (≥ the request timeout). */
  lockMs: number;
  cleanupIntervalMs: number;
}

export function registerIdempotency(app: FastifyInstance, opts: IdempotencyOptions): void {
  const { db } = opts;
  app.decorateRequest('idempotency', null);

  app.addHook('preHandler', async (req, reply) => {
    if (req.method !== 'POST' || req.headers[IDEMPOTENCY_HEADER] === undefined) return;
    if (!req.routeOptions.url || req.routeOptions.config.public || !req.principal) return;
    const raw = req.headers[IDEMPOTENCY_HEADER];
    const key = Array.isArray(raw) ? raw.join(', ') : raw;
    if (!key || key.length > MAX_IDEMPOTENCY_KEY_CHARS || !KEY_RE.test(key)) {
      throw new ApiError('VALIDATION_ERROR', `Idempotency-Key must be 1–${MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters`, {
        path: 'Idempotency-Key', reason: 'invalid value',
      });
    }
    const scope: IdempotencyScope = {
      tenantId: req.principal.tenantId,
      principal: `${req.principal.kind}:${req.principal.subjectId}`,
      route: `${req.method} ${req.routeOptions.url}`,
      key,
    };
    const hash = requestHash(req.method, req.url, req.body);
    const claim = { ...scope, requestHash: hash, lockToken: randomBytes(16).toString('hex'), lockMs: opts.lockMs };
    const claimed = () => {
      const h = new IdempotencyHandle(scope, claim.lockToken, opts.ttlMs);
      req.idempotency = h;
      h.keepLocked(db, opts.lockMs);
      // a hijacked reply (a streamed chat completion) whose client goes away passes neither onSend
      // nor onResponse (that needs 'finish'): its claim stayed in flight, renewed, for a day
      reply.raw.once('close', () => {
        if (h.settled || !reply.sent) return;
        h.settle();
        void release(req);
      });
    };
    for (let i = 0; i < 3; i++) {
      if (await idempotencyKeysInsert(db, claim)) return claimed();
      const row = await idempotencyKeysGet(db, scope);
      if (!row) continue; // released meanwhile: try to claim again
      if (row.expired || row.lock_expired) {
        if (await idempotencyKeysTakeOver(db, claim)) return claimed();
        continue;
      }
      if (row.request_hash !== hash) {
        throw new ApiError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was already used with a different request', { idempotency_key: key });
      }
      if (row.state === 'in_flight') {
        throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', undefined, { idempotency_key: key }, { 'retry-after': '1' });
      }
      return replay(reply, row.status_code ?? 200, row.response_headers ?? {}, row.response_body ?? '');
    }
    throw new ApiError('IDEMPOTENCY_KEY_IN_PROGRESS', undefined, { idempotency_key: key }, { 'retry-after': '1' });
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const h = req.idempotency;
    if (!h || h.settled) return payload;
    h.settle();
    const ok = reply.statusCode >= 200 && reply.statusCode < 300;
    if (ok && h.savedBody !== undefined) return h.savedBody;
    if (ok && (typeof payload === 'string' || Buffer.isBuffer(payload) || payload === null || payload === undefined)) {
      const headers: Record<string, string> = {};
      for (const name of STORED_HEADERS) {
        const v = reply.getHeader(name);
        if (v !== undefined) headers[name] = Array.isArray(v) ? v.join(', ') : String(v);
      }
      let body = payload === null || payload === undefined ? '' : payload.toString();
      const redact = req.routeOptions.config.idempotencyRedact;
      if (redact?.length) body = redacted(body, redact);
      await idempotencyKeysComplete(db, { ...h.scope, lockToken: h.lockToken, statusCode: reply.statusCode, headers, body, ttlMs: h.ttlMs }).catch((err: unknown) =>
        req.log.warn({ err }, 'could not store the idempotent response; a retry with this key will run again'),
      );
      return payload;
    }
    // an error, or a streamed body that cannot be replayed: forget the claim
    await release(req);
    return payload;
  });

  // hijacked or aborted replies never pass onSend
  app.addHook('onResponse', async (req) => {
    const h = req.idempotency;
    if (h && !h.settled) {
      h.settle();
      await release(req);
    }
  });

  async function release(req: FastifyRequest): Promise<void> {
    const h = req.idempotency!;
    const attempt = () => idempotencyKeysRelease(db, { ...h.scope, lockToken: h.lockToken });
    await attempt().catch((err: unknown) => {
      // the database itself failing the request is the usual reason: once it is back the claim is
      // freed, so a client retrying the key is not refused 409 until the lock expires (a minute)
      req.log.warn({ err }, 'could not release an idempotency claim; trying again in the background (it frees itself when its lock expires)');
      void releaseLater(attempt, (e) => req.log.warn({ err: e }, 'could not release an idempotency claim; it frees itself when its lock expires'));
    });
  }

  let timer: NodeJS.Timeout | undefined;
  app.addHook('onReady', async () => {
    timer = setInterval(() => void cleanupExpired(db).catch((err: unknown) => app.log.warn({ err }, 'idempotency cleanup failed')), opts.cleanupIntervalMs);
    timer.unref();
  });
  app.addHook('onClose', async () => clearInterval(timer));
}

function redacted(body: string, fields: string[]): string {
  try {
    const obj = JSON.parse(body) as Record<string, unknown>;
    for (const f of fields) if (f in obj) obj[f] = null;
    return JSON.stringify(obj);
  } catch {
    return '';
  }
}

function replay(reply: FastifyReply, status: number, headers: Record<string, string>, body: string): FastifyReply {
  reply.code(status).headers(headers).header('idempotent-replayed', 'true');
  return reply.send(body);
}

/** Deletes every expired idempotency record, in batches; returns how many. */
export async function cleanupExpired(db: Queryable): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await idempotencyKeysDeleteExpired(db, CLEANUP_BATCH);
    total += n;
    if (n < CLEANUP_BATCH) return total;
  }
}

/** Waits between background tries of a failed release (ms): about a minute in all, the lock's own bound. */
export const RELEASE_RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000];

/** Tries `release` again after each of RELEASE_RETRY_DELAYS_MS until it works; `giveUp` after the last. Timers do not hold the process. */
function releaseLater(release: () => Promise<unknown>, giveUp: (err: unknown) => void, i = 0): void {
  setTimeout(() => {
    release().catch((err: unknown) => (i + 1 < RELEASE_RETRY_DELAYS_MS.length ? releaseLater(release, giveUp, i + 1) : giveUp(err)));
  }, RELEASE_RETRY_DELAYS_MS[i]).unref();
}
