// PostgreSQL and Redis on loopback: checked, started if down, and a fresh database per
// system and run (DROP + CREATE, optionally from a migrated template to skip re-migrating).

import net from 'node:net';
import { readdirSync } from 'node:fs';
import pg from 'pg';
import { runCommand } from './proc.mjs';
import { log, waitUntil } from './util.mjs';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;
export const pgUrl = (db) => `postgres://postgres@${PG_HOST}:${PG_PORT}/${db}`;
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;

export function portOpen(port, host = '127.0.0.1', timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function ensurePostgres() {
  if (await portOpen(PG_PORT, PG_HOST)) return;
  let versions = [];
  try {
    versions = readdirSync('/etc/postgresql');
  } catch {
    /* not a Debian layout */
  }
  if (versions.length === 0) throw new Error('PostgreSQL is not listening on 127.0.0.1:5432 and /etc/postgresql has no cluster to start');
  log(`starting PostgreSQL ${versions[0]}`);
  const r = await runCommand('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0], 'main', 'start'], { timeoutMs: 60_000 });
  if (r.code !== 0) log(`pg_ctlcluster exited ${r.code}: ${r.stderr.trim()}`);
  await waitUntil(() => portOpen(PG_PORT, PG_HOST), { timeoutMs: 30_000, intervalMs: 250, what: 'PostgreSQL on 127.0.0.1:5432' });
}

async function ensureRedis() {
  if (await portOpen(REDIS_PORT, REDIS_HOST)) return;
  log('starting Redis');
  const r = await runCommand(
    'redis-server',
    ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(REDIS_PORT), '--save', '', '--appendonly', 'no'],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) log(`redis-server exited ${r.code}: ${r.stderr.trim()}`);
  await waitUntil(() => portOpen(REDIS_PORT, REDIS_HOST), { timeoutMs: 20_000, intervalMs: 250, what: 'Redis on 127.0.0.1:6379' });
}

export async function ensureServices() {
  await ensurePostgres();
  await ensureRedis();
}

/** Runs `fn(client)` with a short-lived connection to database `db`. */
export async function withPg(db, fn) {
  const client = new pg.Client({ connectionString: pgUrl(db) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Drops and re-creates database `name` (optionally from `template`); returns its URL. */
export async function freshDatabase(name, template) {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
  if (template && !/^[a-z_][a-z0-9_]*$/.test(template)) throw new Error(`bad template name ${template}`);
  await withPg('postgres', async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  });
  return pgUrl(name);
}

export async function dropDatabase(name) {
  await withPg('postgres', (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).catch(() => {});
}

/**
 * Names of this run's databases, Redis key prefix included, carry this process's pid, so
 * two benchmark runs on one machine (a developer's and a CI run, say) never drop each
 * other's data.
 */
export const RUN_ID = String(process.pid);
export const benchName = (base) => `bench_${base}_${RUN_ID}`;

export function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Drops bench_*_<pid> databases left by benchmark runs that are no longer alive. */
export async function dropStaleDatabases() {
  const { rows } = await withPg('postgres', (c) => c.query(`SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'`));
  for (const { datname } of rows) {
    const pid = Number(/_(\d+)$/.exec(datname)?.[1]);
    if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) await dropDatabase(datname);
  }
}

export async function serverSettings() {
  return withPg('postgres', async (c) => {
    const q = async (s) => Object.values((await c.query(`SHOW ${s}`)).rows[0])[0];
    const version = (await c.query('SHOW server_version')).rows[0].server_version;
    return {
      version,
      synchronous_commit: await q('synchronous_commit'),
      fsync: await q('fsync'),
      shared_buffers: await q('shared_buffers'),
      max_connections: await q('max_connections'),
    };
  });
}
