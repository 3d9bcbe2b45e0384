// Service routes: liveness, readiness, Prometheus metrics. No auth, no dependencies for /health;
// /metrics (aggregate figures of every tenant) is for operators (admin in the system tenant) unless
// TASKGATE_METRICS_PUBLIC.
import type { FastifyContextConfig, FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ErrorResponse, errorResponses } from '../../contract/tasks.js';
import { currentVersion, latestVersion } from '../../storage/migrate.js';
import type { StorageHealth } from '../../storage/unavailable.js';
import type { AppDeps } from '../deps.js';
import { requireOperator } from './admin.js';

const Health = Type.Object({ status: Type.Literal('healthy'), version: Type.String(), time: Type.String() });
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: Type.Record(Type.String(), Type.String(), { description: 'database, migrations (and redis when configured): `ok`, or what is wrong; `degraded: …` for a check that does not make the process unready (Redis on a worker, or with TASKGATE_READINESS_REDIS=advisory)' }),
});

export async function serviceRoutes(
  app: FastifyInstance,
  deps: Pick<AppDeps, 'db' | 'metrics' | 'version' | 'readinessChecks' | 'advisoryChecks' | 'config'> & { storage?: StorageHealth },
): Promise<void> {
  const health = async () => ({ status: 'healthy', version: deps.version, time: new Date().toISOString() });
  app.get('/health', { config: { public: true }, schema: { tags: ['service'], summary: 'Liveness', response: { 200: Health, ...errorResponses('GET', 'public') } } }, health);

  let readinessRun: Promise<{ ready: boolean; checks: Record<string, string> }> | undefined;
  app.get('/readiness', {
    config: { public: true },
    schema: {
      tags: ['service'], summary: 'Readiness: database reachable and migrations current',
      response: {
        200: Readiness,
        ...errorResponses('GET', 'public'),
        // a failed check answers its report; a server shutting down, the envelope
        503: Type.Union([Readiness, ErrorResponse], { description: 'Not ready: a check failed (the report says which), or the server is shutting down' }),
      },
    },
  }, async (_req, reply) => {
    // concurrent probes share one check (a public route: a flood of them is one database read at
    // a time, not one each); nothing is kept once it has answered
    const { ready, checks } = await (readinessRun ??= readiness().finally(() => (readinessRun = undefined)));
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  async function readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    try {
      const v = await currentVersion(deps.db);
      checks.database = deps.storage?.failing() ?? 'ok';
      checks.migrations = v === latestVersion() ? 'ok' : `at ${v}, expected ${latestVersion()}`;
    } catch {
      checks.database = 'unreachable';
    }
    let ready = checks.database === 'ok' && checks.migrations === 'ok';
    const extra = [...(deps.readinessChecks ?? []).map((c) => [c, true] as const), ...(deps.advisoryChecks ?? []).map((c) => [c, false] as const)];
    for (const [i, [check, gating]] of extra.entries()) {
      const name = check.name || `check_${i}`;
      try {
        await check();
        checks[name] = 'ok';
      } catch (err) {
        // an advisory check's failure is reported, not a reason to take the process out of service
        checks[name] = gating ? (err as Error).message : `degraded: ${(err as Error).message}`;
        if (gating) ready = false;
      }
    }
    return { ready, checks };
  }

  // never rate limited: a scraper must still see the figures while the limiter's store is down
  const metricsAccess: FastifyContextConfig = deps.config.security.metricsPublic ? { public: true, rateLimit: false } : { scope: 'admin', rateLimit: false };
  app.get('/metrics', { config: metricsAccess, schema: { tags: ['service'], summary: 'Prometheus metrics', hide: true } }, async (req, reply) => {
    if (!deps.config.security.metricsPublic) requireOperator(req.principal);
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
