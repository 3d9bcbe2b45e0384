// Browser-facing hardening: CORS for an allow-list of origins only (never `*` together with
// credentials) and security headers on every response. JSON responses get a deny-all CSP; HTML
// (the /docs UI) gets one that still lets same-origin scripts and styles run; a route may name a
// stricter policy of its own for what it serves (`config.csp`: the dashboard's, no inline styles).
import type { FastifyInstance } from 'fastify';
import cors from '@fastify/cors';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's Content-Security-Policy for what it serves that is not JSON (its errors keep the deny-all one). */
    csp?: string;
  }
}

export const CORS_ALLOWED_HEADERS = ['Content-Type', 'Authorization', 'X-API-Key', 'Idempotency-Key', 'X-Request-ID', 'traceparent', 'Last-Event-ID'];
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

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(STATIC_HEADERS);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const type = String(reply.getHeader('content-type') ?? '');
    const page = type.startsWith('text/html') || type.includes('javascript') || type.startsWith('text/css');
    reply.header('content-security-policy', page ? (req.routeOptions.config?.csp ?? HTML_CSP) : JSON_CSP);
    return payload;
  });
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
