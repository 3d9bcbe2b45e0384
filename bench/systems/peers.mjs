// The peers and the reference ceilings as child processes, each on a fresh store.

import { join } from 'node:path';
import { startProcess } from '../lib/proc.mjs';
import { freshDatabase, dropDatabase, flushRedis, pgUrl, REDIS_DB } from '../lib/services.mjs';

const PEER_DIR = join(import.meta.dirname, '..', 'peers');
const PEER_DB = 'bench_peer';

export const PEERS = [
  { system: 'bullmq', db: 'redis', script: 'bullmq.mjs', cfg: { backend: 'redis', redisDb: REDIS_DB } },
  { system: 'bullmq', db: 'pg', script: 'bullmq.mjs', cfg: { backend: 'pg' } },
  { system: 'pg-boss', db: 'pg', script: 'pg-boss.mjs', cfg: {} },
  { system: 'graphile-worker', db: 'pg', script: 'graphile-worker.mjs', cfg: {} },
];

/** A fresh store for one peer run: a new database, or an empty Redis. */
export async function freshPeerStore(db) {
  if (db === 'redis') {
    await flushRedis();
    return { dispose: () => flushRedis().catch(() => {}) };
  }
  await freshDatabase(PEER_DB);
  return { databaseUrl: pgUrl(PEER_DB), dispose: () => dropDatabase(PEER_DB) };
}

/** Spawns a peer child in `mode`; resolves once it reports ready (submit/idle) or at once. */
export function spawnPeer(peer, store, cfg) {
  const full = { ...peer.cfg, databaseUrl: store.databaseUrl, ...cfg };
  return startProcess(`${peer.system}-${peer.db}-${cfg.mode}`, process.execPath, [join(PEER_DIR, peer.script), JSON.stringify(full)], {
    ipc: true,
  });
}

export async function waitReady(proc, timeoutMs = 60_000) {
  const m = await proc.waitMessage((x) => x.type === 'ready' || x.type === 'error', timeoutMs, 'ready');
  if (m.type === 'error') throw new Error(`${proc.name}: ${m.error}`);
}

/** Asks a submit/idle-mode peer to stop, then makes sure it is gone. */
export async function stopPeer(proc) {
  if (proc.alive) {
    try {
      proc.send({ type: 'stop' });
    } catch {
      /* channel closed */
    }
  }
  await proc.stop(5_000);
}

export const BASELINES = [
  { system: 'fastify-bare', db: 'none', mode: 'bare' },
  { system: 'fastify-insert', db: 'pg', mode: 'insert' },
];

export function spawnBaseline(b, store, port) {
  return startProcess(
    `${b.system}`,
    process.execPath,
    [join(import.meta.dirname, 'fastify-baseline.mjs'), b.mode, String(port)],
    { ipc: true, env: store.databaseUrl ? { DATABASE_URL: store.databaseUrl } : {} },
  );
}
