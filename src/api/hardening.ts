// Browser-facing hardening: CORS for an allow-list of origins only (never `*` together with
// credentials) and security headers on every response. JSON responses get a deny-all CSP; HTML
// (the /docs UI) gets one that still lets same-origin scripts and styles run; a route may name a
// stricter policy of its own for what it serves (`config.csp`: the dashboard's, no inline styles),
// which then covers every answer of that route but its JSON errors — 304s and redirects too.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { OutgoingHttpHeaders } from 'node:http';
import cors from '@fastify/cors';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * This route's Content-Security-Policy for every answer that is not JSON (its errors keep the
     * deny-all one) — also those without a content type: a 304 or a redirect.
     */
    csp?: string;
  }
}

export const CORS_ALLOWED_HEADERS = [
  'Content-Type', 'Authorization', 'X-API-Key', 'Idempotency-Key', 'X-Request-ID', 'traceparent', 'Last-Event-ID',
  // what the official OpenAI SDKs send from a browser on every call (the /v1 routes): without them
  // the preflight fails and the SDK reports a connection error
  'OpenAI-Organization', 'OpenAI-Project', 'OpenAI-Beta', 'X-Stainless-Arch', 'X-Stainless-Lang', 'X-Stainless-OS',
  'X-Stainless-Package-Version', 'X-Stainless-Retry-Count', 'X-Stainless-Runtime', 'X-Stainless-Runtime-Version', 'X-Stainless-Timeout',
];
export const CORS_EXPOSED_HEADERS = [
  'X-Request-ID', 'X-Trace-ID', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After',
  'Idempotent-Replayed', 'X-Workflow-ID', 'X-Session-ID', 'Location', 'Link',
];
/** Browsers may cache a preflight answer this long (seconds). */
const CORS_MAX_AGE_S = 600;

const JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
// swagger-ui ships its initializer as a file but sets inline styles, and draws images from data: URLs
const HTML_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

const STATIC_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  // ignored by browsers on plain http; takes effect once a TLS proxy fronts the server
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-permitted-cross-domain-policies': 'none',
};

/** Every security header of a JSON answer, for answers written past the hooks that set them (errors.ts). */
export const JSON_SECURITY_HEADERS: Readonly<Record<string, string>> = { ...STATIC_HEADERS, 'content-security-policy': JSON_CSP };

/**
 * The headers of an answer a route writes itself (a hijacked stream: SSE, a streamed chat
 * completion), which onSend never sees: what onRequest set on the reply, and the deny-all CSP. No
 * `Connection` header: Node keeps the connection alive, or closes it after the answer when the
 * client sent `Connection: close` (an explicit keep-alive held such a socket ~70 s).
 */
export function hijackedHeaders(reply: FastifyReply): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) out[k] = v;
  out['content-security-policy'] = JSON_CSP;
  return out;
}

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(STATIC_HEADERS);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('content-security-policy', policyOf(req.routeOptions.config?.csp, String(reply.getHeader('content-type') ?? '')));
    return payload;
  });
}

/**
 * The CSP of one answer. A route's own policy is chosen by the route, not the content type: a 304
 * has none, and Chromium merges a 304's headers into the cached page — a 304 under the deny-all
 * policy left a reloaded dashboard blank, its scripts and stylesheet refused.
 */
function policyOf(routeCsp: string | undefined, type: string): string {
  if (type.includes('json')) return JSON_CSP;
  if (routeCsp) return routeCsp;
  const page = type.startsWith('text/html') || type.includes('javascript') || type.startsWith('text/css');
  return page ? HTML_CSP : JSON_CSP;
}

/**
 * CORS for the configured origins (TASKGATE_CORS_ORIGINS). Without any, no CORS headers are sent
 * and browsers keep cross-origin pages out. `*` allows any origin, but then without credentials.
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  const wildcard = origins.includes('*');
  // the preflight route answers before auth: it carries no credentials by design
  app.addHook('onRoute', (route) => {
    if (route.url === '*' && route.method === 'OPTIONS') route.config = { ...(route.config ?? {}), public: true } as typeof route.config;
  });
  await app.register(cors, {
    origin: wildcard ? '*' : [...origins],
    credentials: !wildcard,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    maxAge: CORS_MAX_AGE_S,
    strictPreflight: true,
  });
}
