// Service routes: liveness, readiness, Prometheus metrics. No auth, no dependencies for /health.
import type { FastifyInstance } from 'fastify';
import { currentVersion, latestVersion } from '../../storage/migrate.js';
import type { AppDeps } from '../deps.js';

export async function serviceRoutes(app: FastifyInstance, deps: Pick<AppDeps, 'db' | 'metrics' | 'version' | 'readinessChecks'>): Promise<void> {
  const health = async () => ({ status: 'healthy', version: deps.version, time: new Date().toISOString() });
  app.get('/health', { config: { public: true }, schema: { tags: ['service'], summary: 'Liveness' } }, health);

  app.get('/readiness', { config: { public: true }, schema: { tags: ['service'], summary: 'Readiness: database reachable and migrations current' } }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      const v = await currentVersion(deps.db);
      checks.database = 'ok';
      checks.migrations = v === latestVersion() ? 'ok' : `at ${v}, expected ${latestVersion()}`;
    } catch {
      checks.database = 'unreachable';
    }
    for (const [i, check] of (deps.readinessChecks ?? []).entries()) {
      try {
        await check();
        checks[check.name || `check_${i}`] = 'ok';
      } catch (err) {
        checks[check.name || `check_${i}`] = (err as Error).message;
      }
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });

  app.get('/metrics', { config: { public: true }, schema: { tags: ['service'], summary: 'Prometheus metrics', hide: true } }, async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
