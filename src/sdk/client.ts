// A small fetch-based client for the Taskgate HTTP API (runs in Node ≥ 20 and browsers). It speaks
// the canonical routes with the shapes in src/contract; every non-2xx answer becomes a TaskgateError.
import type { ErrorEnvelope } from '../contract/errors.js';
import type {
  ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, CreateTenantBody, CreateTenantKeyBody, Me, TenantList, TenantView,
  UpdateTenantBody,
} from '../contract/auth.js';
import { TaskgateError } from './errors.js';

export const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';

export interface ClientOptions {
  /** Default http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Sent as X-API-Key; a JWT is sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  /** Sent as Idempotency-Key (POST): a retry with the same key is answered from the first response. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

export interface PageOptions {
  limit?: number;
  offset?: number;
}

export class TaskgateClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string>;

  constructor(opts: ClientOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    this.#apiKey = opts.apiKey;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#headers = opts.headers ?? {};
  }

  /** Any route: resolves with the parsed JSON body (undefined for 204). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.#headers, ...opts.headers };
    if (this.#apiKey) {
      if (this.#apiKey.includes('.')) headers.authorization = `Bearer ${this.#apiKey}`;
      else headers['x-api-key'] = this.#apiKey;
    }
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    let res: Response;
    try {
      res = await this.#fetch(url, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), signal: opts.signal });
    } catch (err) {
      throw new TaskgateError({ status: 0, code: 'NETWORK_ERROR', message: `cannot reach ${this.baseUrl}: ${(err as Error).message}`, cause: err });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (res.ok) return parsed as T;
    const env = (parsed as Partial<ErrorEnvelope> | undefined)?.error;
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new TaskgateError({
      status: res.status,
      code: env?.code ?? 'BAD_RESPONSE',
      message: env?.message ?? `HTTP ${res.status}`,
      details: env?.details,
      requestId: (parsed as Partial<ErrorEnvelope> | undefined)?.request_id ?? res.headers.get('x-request-id') ?? undefined,
      retryAfterS: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    });
  }

  /** The calling credential: tenant, user, scopes, rate limit. */
  me(): Promise<Me> {
    return this.request('GET', '/api/v1/auth/me');
  }

  /** Creates a key in the caller's tenant; the returned `key` is shown only this once. */
  createApiKey(body: CreateApiKeyBody, opts: { idempotencyKey?: string } = {}): Promise<CreatedApiKey> {
    return this.request('POST', '/api/v1/auth/api-keys', { body, ...opts });
  }

  listApiKeys(page: PageOptions = {}): Promise<ApiKeyList> {
    return this.request('GET', '/api/v1/auth/api-keys', { query: { ...page } });
  }

  getApiKey(id: string): Promise<ApiKeyView> {
    return this.request('GET', `/api/v1/auth/api-keys/${encodeURIComponent(id)}`);
  }

  /** Revokes a key of the caller's tenant; it stops working on the next request. */
  async revokeApiKey(id: string): Promise<void> {
    await this.request('DELETE', `/api/v1/auth/api-keys/${encodeURIComponent(id)}`);
  }

  /** Operators only (admin scope in the system tenant). */
  createTenant(body: CreateTenantBody, opts: { idempotencyKey?: string } = {}): Promise<TenantView> {
    return this.request('POST', '/api/v1/admin/tenants', { body, ...opts });
  }

  listTenants(page: PageOptions = {}): Promise<TenantList> {
    return this.request('GET', '/api/v1/admin/tenants', { query: { ...page } });
  }

  getTenant(id: string): Promise<TenantView> {
    return this.request('GET', `/api/v1/admin/tenants/${encodeURIComponent(id)}`);
  }

  updateTenant(id: string, body: UpdateTenantBody): Promise<TenantView> {
    return this.request('PATCH', `/api/v1/admin/tenants/${encodeURIComponent(id)}`, { body });
  }

  /** Creates a key in any tenant (operators only); the returned `key` is shown only this once. */
  createTenantApiKey(tenantId: string, body: CreateTenantKeyBody, opts: { idempotencyKey?: string } = {}): Promise<CreatedApiKey> {
    return this.request('POST', `/api/v1/admin/tenants/${encodeURIComponent(tenantId)}/api-keys`, { body, ...opts });
  }
}
