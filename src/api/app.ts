// The Fastify application: request ids and trace ids, the JSON parser, the error envelope for
// everything (including unknown routes and wrong methods), auth, OpenAPI, and the routes.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import swagger from '@fastify/swagger';
import { AjvCompiler } from '@fastify/ajv-compiler';
import swaggerUi from '@fastify/swagger-ui';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { LazyChildLogger } from '../logger.js';
import type { AppDeps } from './deps.js';
import { clientErrorHandler, connectRefused, envelope, errorBodyFor, errorHandler, expectationFailed, frameworkErrors } from './errors.js';
import { requestIdOf, traceIdOf } from './request-ids.js';
import { registerJsonParser } from './json-parser.js';
import { createAuthenticator, registerAuth, type Authenticator } from './auth.js';
import { registerCors, registerSecurityHeaders } from './hardening.js';
import { registerReferenceErrors } from './error-format.js';
import { StorageHealth } from '../storage/unavailable.js';
import { hasUnstorable, storableText } from '../storage/storable.js';
import { ApiError } from '../contract/errors.js';
import { errorResponses } from '../contract/tasks.js';
import { Type } from 'typebox';
import { registerRateLimit } from './rate-limit.js';
import { registerIdempotency } from './idempotency.js';
import { MemoryRateLimiter, type RateLimiter } from '../auth/rate-limiter.js';
import { AuthFailureLimiter } from '../auth/auth-failures.js';
import { authKeyRoutes } from './routes/auth-keys.js';
import { adminRoutes } from './routes/admin.js';
import { taskRoutes } from './routes/tasks.js';
import { definitionRoutes } from './routes/definitions.js';
import { approvalRoutes } from './routes/approvals.js';
import { compatRoutes } from './routes/compat.js';
import { serviceRoutes } from './routes/service.js';
import { dashboardRoutes } from './routes/dashboard.js';

declare module 'fastify' {
  interface FastifyRequest {
    traceId: string;
  }
  interface FastifyInstance {
    /**
     * The start of a shutdown, before close(): every request from now on is answered 503
     * UNAVAILABLE with Retry-After and `Connection: close`, so keep-alive clients leave on an
     * answer rather than a reset (main.ts's drain).
     */
    refuseRequests(): void;
  }
}

export interface BuildAppOptions {
  /** `worker` serves only /health, /readiness and /metrics. */
  role: 'api' | 'worker' | 'all';
  logger?: FastifyServerOptions['loggerInstance'];
  /** Replaces the default authentication (API keys, plus JWTs when configured). */
  authenticate?: Authenticator;
  /** Where rate-limit buckets live (main.ts passes the Redis one when REDIS_URL is set); default in memory. */
  rateLimiter?: RateLimiter;
  /** Plugins registered after the core routes (streaming, sessions, admin, compat…). */
  plugins?: ((app: FastifyInstance) => Promise<void>)[];
}

/** Route patterns by method, to answer 405 instead of 404 when only the method is wrong. */
function routeMatcher() {
  const routes: { method: string; re: RegExp }[] = [];
  return {
    add(method: string | string[], url: string) {
      const re = new RegExp('^' + url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+') + '/?$');
      for (const m of Array.isArray(method) ? method : [method]) routes.push({ method: m, re });
    },
    allowed(path: string): string[] {
      return [...new Set(routes.filter((r) => r.re.test(path)).map((r) => r.method))];
    },
  };
}

const validatorPool = AjvCompiler();

/**
 * Path, query and header values are strings on the wire and are converted to their schema's
 * types (`?limit=5`); a JSON body is taken as sent: a value of the wrong type is a 400 naming it,
 * never converted (`"timeout_ms": "5000"`, `"tags": [1]`) — what is stored is what was sent.
 */
function strictBodyValidators(...args: Parameters<typeof validatorPool>): ReturnType<typeof validatorPool> {
  const [external, options] = args;
  const coercing = validatorPool(external, options);
  const strict = validatorPool(external, { ...options, customOptions: { ...options?.customOptions, coerceTypes: false } } as typeof options);
  return ((route: { httpPart?: string }) =>
    route.httpPart === 'body' ? strict(route as never) : finiteNumbers(coercing(route as never) as Validate)) as unknown as ReturnType<typeof validatorPool>;
}

type Validate = ((data: unknown) => unknown) & { errors?: unknown };

/**
 * Ajv converts `?limit=Infinity` (and `1e309`) to a number that passes `integer` and `maximum`
 * (strictNumbers covers only values that arrive as numbers): a converted value that is not finite
 * is refused here, naming the parameter, before it reaches SQL or the serializer.
 */
function finiteNumbers(validate: Validate): Validate {
  const checked: Validate = (data) => {
    const ok = validate(data);
    checked.errors = validate.errors;
    if (ok !== true || typeof data !== 'object' || data === null) return ok;
    for (const [name, value] of Object.entries(data)) {
      if ([value].flat().some((v) => typeof v === 'number' && !Number.isFinite(v))) {
        checked.errors = [{ instancePath: `/${name}`, schemaPath: '#/type', keyword: 'type', params: { type: 'number' }, message: 'must be a finite number' }];
        return false;
      }
    }
    return ok;
  };
  return checked;
}

/** Fastify's trustProxy from TASKGATE_TRUST_PROXY: a hop count trusts that many proxies nearest the server. */
function trustProxyOption(t: number | readonly string[] | undefined): boolean | string[] | ((addr: string, hop: number) => boolean) {
  if (t === undefined) return false;
  if (typeof t === 'number') return (_addr, hop) => hop < t;
  return [...t];
}

export async function buildApp(deps: AppDeps, opts: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // the socket's idle timeout, past the request timeout and Node's check of it (every
    // connectionsCheckingInterval): equal, a body that stopped arriving had its socket destroyed
    // before the 408 could be sent
    connectionTimeout: config.requestTimeoutMs > 0 ? config.requestTimeoutMs + 2_000 : 0,
    // slow-header clients are cut off; Node checks its timeouts every connectionsCheckingInterval
    http: {
      headersTimeout: config.requestTimeoutMs > 0 ? Math.min(config.security.headersTimeoutMs, config.requestTimeoutMs) : config.security.headersTimeoutMs,
      connectionsCheckingInterval: 1000,
      // an HTTP/1.1 request without Host is refused in onRequest below, in the envelope with a
      // request id: Node's own refusal was a bare 400 with no body
      requireHostHeader: false,
    },
    // requests still arriving on open keep-alive connections while the server closes get 503 in
    // our envelope (the onRequest hook below), not Fastify's own body
    return503OnClosing: false,
    // a request Node's parser refuses (header timeout, oversized headers, not HTTP) in our envelope
    clientErrorHandler,
    // and a path the router refuses (bad percent-encoding, a parameter over maxParamLength)
    frameworkErrors,
    // the client address behind reverse proxies named by TASKGATE_TRUST_PROXY (off: the socket's)
    trustProxy: trustProxyOption(config.security.trustProxy),
    requestIdHeader: false,
    genReqId: requestIdOf,
    // every request's log lines carry its request id and trace id; the child is built on first use
    childLoggerFactory: (logger, bindings, options, raw) =>
      new LazyChildLogger(logger as Logger, () => ({ ...bindings, trace_id: traceIdOf(raw as IncomingMessage) }), options) as unknown as Logger,
    routerOptions: { maxParamLength: 256, ignoreTrailingSlash: true },
    // strictNumbers: `?limit=Infinity` (and a body's 1e309) is not a number: a 400 here, not a value reaching SQL
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true, allErrors: false, strictNumbers: true } },
    schemaController: { compilersFactory: { buildValidator: strictBodyValidators } },
  });

  // an Expect Node cannot meet (anything but 100-continue): our 417 envelope, not Node's empty one
  app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => expectationFailed(res, req));
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => connectRefused(socket, req));

  const matcher = routeMatcher();
  app.addHook('onRoute', (route) => matcher.add(route.method, route.url));
  // a full disk fails writes while reads (and so the readiness probe's query) still work
  const storage = deps.storage ?? new StorageHealth();
  app.setErrorHandler((err, req, reply) => {
    storage.note(err);
    return errorHandler(err, req, reply);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const allowed = matcher.allowed(path);
    if (allowed.length && !allowed.includes(req.method)) {
      reply.header('allow', allowed.join(', '));
      // in the shape of the path's routes: seed 004's and OpenAI's clients parse only their own
      return reply.code(405).send(errorBodyFor(req.url, 'METHOD_NOT_ALLOWED', `Method ${req.method} not allowed on ${path}`, String(req.id)));
    }
    return reply.code(404).send(errorBodyFor(req.url, 'NOT_FOUND', `Route ${req.method} ${path} not found`, String(req.id)));
  });

  app.decorateRequest('traceId', '');
  let closing = false;
  app.decorate('refuseRequests', () => {
    closing = true;
  });
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    req.traceId = traceIdOf(req.raw);
    // a client that went away before its answer began (a stream that had begun counts itself)
    if (!isInjected(req.raw) && req.headers.upgrade === undefined) {
      reply.raw.once('close', () => {
        if (!reply.raw.headersSent) deps.metrics.httpAborted.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched' });
      });
    }
    reply.header('x-request-id', String(req.id));
    reply.header('x-trace-id', req.traceId);
    if (closing) {
      // a body still coming is read (and dropped) first: a socket closed with unread bytes sends
      // a reset, and the client would see ECONNRESET instead of this answer
      if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) await discardBody(req.raw);
      // a load balancer retries it on another node; the client's connection closes with the answer
      return reply.code(503).header('retry-after', '1').header('connection', 'close').send(envelope('UNAVAILABLE', 'The server is shutting down', String(req.id)));
    }
    // RFC 9112 §3.2: an HTTP/1.1 request carries a Host header (HTTP/1.0 may not)
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') {
      throw new ApiError('VALIDATION_ERROR', 'An HTTP/1.1 request needs a Host header', { location: 'headers', path: 'host', reason: 'required' });
    }
  });
  // a query value PostgreSQL cannot store (`?tag=%00`): the statement it filters would fail with a
  // data exception (a 400 naming no field, a warning in the log); refused here, naming the
  // parameter, as a body's are by the JSON parser. Only a percent-encoded URL can carry one.
  // (A callback hook: every request passes here, the submit's hot path too.)
  // an answer written once the shutdown began (its request came before) closes its connection: a
  // keep-alive client then leaves on it instead of holding a socket the closing server cannot reuse
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('preValidation', (req, _reply, done) => {
    if (!req.url.includes('%')) return done();
    for (const [name, value] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
      const values = Array.isArray(value) ? value : [value];
      if (hasUnstorable(name) || values.some((v) => typeof v === 'string' && hasUnstorable(v))) {
        const shown = storableText(name).slice(0, 40);
        return done(new ApiError('VALIDATION_ERROR', `query parameter ${shown} cannot hold a NUL character (%00)`, {
          location: 'querystring', path: shown, reason: 'unstorable character',
        }));
      }
    }
    done();
  });
  app.addHook('onResponse', async (req, reply) => {
    // a request a route makes of the app itself (the compatibility routes' call of the canonical
    // one, a chat completion's submit) is part of the client's request, counted once as that
    if (isInjected(req.raw)) return;
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });

  registerSecurityHeaders(app);
  if (config.errorFormat === 'reference') registerReferenceErrors(app, isInjected);
  await registerCors(app, config.corsOrigins);
  registerJsonParser(app, { bodyLimit: config.bodyLimitBytes, maxDepth: config.maxJsonDepth });
  const authenticate = opts.authenticate ?? createAuthenticator(deps.db, config.security.jwt, { cacheMs: config.security.authCacheMs });
  if (authenticate.invalidate) {
    const stop = deps.signals.onCredentials(authenticate.invalidate);
    app.addHook('onClose', async () => void stop());
  }
  registerAuth(app, authenticate, {
    disabled: config.authDisabled,
    failures: config.security.authFailuresPerMin > 0 ? new AuthFailureLimiter(config.security.authFailuresPerMin, config.security.authFailureBurst) : undefined,
    anonymous: { kind: 'anonymous', tenantId: 'default', userId: 'anonymous', subjectId: 'anonymous', scopes: ['admin'], rateLimit: null },
  });
  const sec = config.security;
  const rateLimiter = opts.rateLimiter ?? new MemoryRateLimiter();
  registerRateLimit(app, {
    limiter: rateLimiter, perMinute: sec.rateLimitPerMin, burst: sec.rateLimitBurst, readMultiplier: sec.readRateLimitMultiplier,
    failMode: sec.rateLimitFailMode, registry: deps.metrics.registry,
  });
  if (!opts.rateLimiter) app.addHook('onClose', async () => rateLimiter.close());
  registerIdempotency(app, {
    db: deps.db, ttlMs: sec.idempotencyTtlMs, cleanupIntervalMs: sec.idempotencyCleanupIntervalMs,
    // renewed while its request runs (IdempotencyHandle.keepLocked): only the key of a request
    // whose process died is ever taken over, this long after its last renewal
    lockMs: (config.requestTimeoutMs || 300_000) + 30_000,
  });

  if (opts.role !== 'worker') {
    // what the document says of a public operation: it needs no credential (`security: []`, over
    // the document-wide one) and answers no rate-limit headers (nor do the streams, whose schemas
    // say 'x-unlimited'; seed 004's routes relay their canonical route's). Before swagger's own
    // onRoute hook, so it sees the marks.
    app.addHook('onRoute', (route) => {
      if (!route.schema || !(route.config as { public?: boolean } | undefined)?.public) return;
      route.schema = { ...route.schema, security: [], 'x-unlimited': true } as typeof route.schema;
    });
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'Taskgate API', version: deps.version, description: 'Task gateway and durable execution engine' },
        components: {
          securitySchemes: {
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
            bearer: { type: 'http', scheme: 'bearer' },
          },
        },
        security: [{ apiKey: [] }, { bearer: [] }],
      },
      // @fastify/swagger marks every declared body required; a route that accepts none (the
      // control routes) says `'x-body-optional': true` in its schema, made requestBody.required: false here
      transformObject: (doc) => {
        if (!('openapiObject' in doc)) return doc.swaggerObject;
        for (const [url, path] of Object.entries(doc.openapiObject.paths ?? {})) {
          for (const [method, op] of Object.entries(path ?? {}) as [string, OpenApiOperation | undefined][]) {
            if (!op || typeof op !== 'object') continue;
            if (op['x-body-optional']) {
              if (op.requestBody) op.requestBody.required = false;
              delete op['x-body-optional'];
            }
            describeHeaders(url, method, op, !op['x-unlimited']);
            delete op['x-unlimited'];
          }
        }
        doc.openapiObject.components = { ...doc.openapiObject.components, headers: OPENAPI_HEADERS };
        return doc.openapiObject;
      },
    });
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/docs')) route.config = { ...(route.config ?? {}), public: true } as typeof route.config;
      // swagger-ui sends its old index page to `req.url` minus a trailing `/static/index.html`: with a
      // trailing slash or a query string (both still reach this route) that is the same URL again — a loop
      if (route.url === '/docs/static/index.html') route.handler = async (_req, reply) => reply.redirect('/docs/');
    });
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });
    app.get('/openapi.json', {
      config: { public: true },
      schema: {
        tags: ['service'], summary: 'This OpenAPI 3.1 document',
        response: { 200: Type.Unsafe<object>({ type: 'object', additionalProperties: true, description: 'The OpenAPI 3.1 document' }), ...errorResponses('GET', 'public') },
      },
    }, async () => app.swagger());
  }

  await app.register(async (scope) => serviceRoutes(scope, { ...deps, storage }));
  if (opts.role !== 'worker') {
    await app.register(async (scope) => taskRoutes(scope, deps));
    await app.register(async (scope) => definitionRoutes(scope, deps));
    await app.register(async (scope) => authKeyRoutes(scope, deps));
    await app.register(async (scope) => adminRoutes(scope, deps));
    await app.register(async (scope) => approvalRoutes(scope, deps));
    await app.register(async (scope) => compatRoutes(scope, deps));
    await app.register(async (scope) => dashboardRoutes(scope));
    for (const plugin of opts.plugins ?? []) await app.register(plugin);
  }
  return app;
}

type OpenApiOperation = {
  'x-body-optional'?: boolean;
  'x-unlimited'?: boolean;
  requestBody?: { required?: boolean };
  parameters?: object[];
  security?: unknown[];
  responses?: Record<string, { headers?: Record<string, object> }>;
};

/** Headers of the API's answers (docs/api.md, docs/security.md), shared by the operations. */
const OPENAPI_HEADERS: Record<string, object> = {
  'X-RateLimit-Limit': { description: "The principal's budget per minute (reads or writes)", schema: { type: 'integer' } },
  'X-RateLimit-Remaining': { description: 'Requests left in the bucket', schema: { type: 'integer' } },
  'X-RateLimit-Reset': { description: 'When the bucket is full again (unix seconds)', schema: { type: 'integer' } },
  'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer' } },
  'X-Workflow-ID': { description: 'The task id (as task_id / workflow_id in the body)', schema: { type: 'string' } },
  'X-Session-ID': { description: "The task's session, when it has one", schema: { type: 'string' } },
  'Idempotent-Replayed': { description: '`true` on a replay of the response stored under the Idempotency-Key', schema: { type: 'string' } },
  'Link': { description: '`<stream_url>; rel=stream`: the SSE stream of the submitted task', schema: { type: 'string' } },
  'WWW-Authenticate': { description: 'The scheme to authenticate with: `Bearer realm="taskgate", charset="UTF-8"`', schema: { type: 'string' } },
};
const ref = (name: string) => ({ $ref: `#/components/headers/${name}` });

/** The operations whose success answers name their task (its session, its stream) in headers. */
const TASK_ID_HEADERS: Record<string, string[]> = {
  'post /api/v1/tasks': ['X-Workflow-ID', 'X-Session-ID'],
  'post /api/v1/tasks/stream': ['X-Workflow-ID', 'X-Session-ID', 'Link'],
  'get /api/v1/tasks/{id}': ['X-Workflow-ID'],
  'get /api/v1/stream/sse': ['X-Workflow-ID'],
  'post /v1/chat/completions': ['X-Workflow-ID', 'X-Session-ID'],
};

/**
 * What the schemas cannot say: the Idempotency-Key every authenticated POST takes, and the headers
 * its answers carry — rate-limit headers on limited routes, Retry-After on 429/503, WWW-Authenticate
 * on 401 (PRODUCT §3), the submit's ids and the stream submit's Link.
 */
function describeHeaders(url: string, method: string, op: OpenApiOperation, rateLimited: boolean): void {
  if (!url.startsWith('/api/v1/') && !url.startsWith('/v1/')) return;
  if (method === 'post') {
    (op.parameters ??= []).push({
      name: 'Idempotency-Key', in: 'header', required: false,
      description: 'Replays the first 2xx answer of the same request for 24 h; another request under the key is 422, one still in flight 409',
      schema: { type: 'string', minLength: 1, maxLength: 255 },
    });
  }
  for (const [status, res] of Object.entries(op.responses ?? {})) {
    if (typeof res !== 'object' || res === null || '$ref' in res) continue;
    const headers: Record<string, object> = { ...(res.headers ?? {}) };
    if (rateLimited && (/^2/.test(status) || status === '429')) {
      for (const h of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) headers[h] ??= ref(h);
    }
    if (status === '429' || status === '503') headers['Retry-After'] ??= ref('Retry-After');
    if (status === '401') headers['WWW-Authenticate'] ??= ref('WWW-Authenticate');
    if (method === 'post' && /^2/.test(status)) headers['Idempotent-Replayed'] ??= ref('Idempotent-Replayed');
    const ids = /^2/.test(status) ? TASK_ID_HEADERS[`${method} ${url}`] : undefined;
    for (const h of ids ?? []) headers[h] ??= ref(h);
    res.headers = headers;
  }
}

/** Whether Fastify's inject() made this request (light-my-request's Request), not a client. */
function isInjected(raw: object): boolean {
  return '_lightMyRequest' in raw;
}

/** Reads a request's body to its end and drops it; gives up after a second (a client that stalls). */
function discardBody(raw: IncomingMessage): Promise<void> {
  if (raw.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, 1_000);
    raw.once('end', done).once('error', done).once('close', done);
    raw.resume();
  });
}
