// The peers and the reference ceilings as child processes, each on a fresh store.

import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startProcess } from '../lib/proc.mjs';
import { benchName, freshDatabase, dropDatabase, pgUrl, pidAlive, RUN_ID } from '../lib/services.mjs';

const PEER_DIR = join(import.meta.dirname, '..', 'peers');
const PEER_DB = benchName('peer');

export const PEERS = [
  { system: 'bullmq', db: 'redis', script: 'bullmq.mjs', cfg: { backend: 'redis' } },
  { system: 'bullmq', db: 'pg', script: 'bullmq.mjs', cfg: { backend: 'pg' } },
  { system: 'pg-boss', db: 'pg', script: 'pg-boss.mjs', cfg: {} },
  { system: 'graphile-worker', db: 'pg', script: 'graphile-worker.mjs', cfg: {} },
];

let redisRuns = 0;

/** Deletes keys of benchmark runs whose process is gone (`bench-<pid>-<n>:…`). */
export async function dropStaleRedisKeys() {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  const dead = new Set();
  try {
    await redis.connect();
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'bench-*', 'COUNT', 1000);
      for (const k of keys) {
        const m = /^(bench-(\d+)-\d+):/.exec(k);
        if (m && !pidAlive(Number(m[2]))) dead.add(m[1]);
      }
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    redis.disconnect();
  }
  for (const prefix of dead) await deleteRedisPrefix(prefix);
}

/** Deletes every key under `prefix:` (SCAN + UNLINK), whatever the peer left behind. */
async function deleteRedisPrefix(prefix) {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * A fresh store for one peer run: a new database, or on Redis a key prefix never used before
 * (the peer obliterates its queue when it closes; nothing else in the Redis is touched).
 */
export async function freshPeerStore(db) {
  if (db === 'redis') {
    const redisPrefix = `bench-${RUN_ID}-${++redisRuns}`;
    return { redisPrefix, dispose: () => deleteRedisPrefix(redisPrefix).catch(() => {}) };
  }
  await freshDatabase(PEER_DB);
  return { databaseUrl: pgUrl(PEER_DB), dispose: () => dropDatabase(PEER_DB) };
}

/** Spawns a peer child in `mode`; resolves once it reports ready (submit/idle) or at once. */
export function spawnPeer(peer, store, cfg) {
  const full = { ...peer.cfg, databaseUrl: store.databaseUrl, redisPrefix: store.redisPrefix, ...cfg };
  return startProcess(`${peer.system}-${peer.db}-${cfg.mode}`, process.execPath, [join(PEER_DIR, peer.script), JSON.stringify(full)], {
    ipc: true,
  });
}

export async function waitReady(proc, timeoutMs = 60_000) {
  const m = await proc.waitMessage((x) => x.type === 'ready' || x.type === 'error', timeoutMs, 'ready');
  if (m.type === 'error') throw new Error(`${proc.name}: ${m.error}`);
}

/**
 * One case per peer: a fresh store, the peer spawned with `cfg(peer)` (called per run, so a
 * port can be taken per run), `body(proc, cfg)` measured, then the peer and its store cleaned up.
 */
export function peerCases(cfg, body, stop = (proc) => proc.stop()) {
  return PEERS.map((peer) => ({
    system: peer.system,
    db: peer.db,
    async run() {
      const store = await freshPeerStore(peer.db);
      const c = cfg(peer);
      const proc = spawnPeer(peer, store, c);
      try {
        return await body(proc, c);
      } finally {
        await stop(proc);
        await store.dispose();
      }
    },
  }));
}

/** Asks a submit/idle-mode peer to stop and close cleanly, then makes sure it is gone. */
export async function stopPeer(proc) {
  if (proc.alive) {
    try {
      proc.send({ type: 'stop' });
      await Promise.race([proc.exited, new Promise((r) => setTimeout(r, 10_000))]);
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
