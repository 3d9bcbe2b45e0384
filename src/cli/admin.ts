// `taskgate tenants create|list` and `taskgate keys create|list|revoke`: thin commands over the SDK,
// talking HTTP to a running server (--url), with the key from --key, TASKGATE_API_KEY or the
// server's <data-dir>/admin.key.
import { readFileSync } from 'node:fs';
import { loadClientConfig } from '../config/client.js';
import { TaskgateClient, TaskgateError, type CreatedApiKey, type Scope } from '../sdk/index.js';

export const ADMIN_HELP = `Client commands (talk to a running server):
  taskgate tenants create --name NAME [--id ID] [--rate-per-min N --burst N]
  taskgate tenants list [--limit 50] [--offset 0]
  taskgate keys create --name NAME --scopes tasks:read,tasks:execute [--tenant ID] [--expires-at RFC3339] [--user ID]
  taskgate keys list [--limit 50] [--offset 0]
  taskgate keys revoke KEY_ID
Options: --url http://127.0.0.1:8080 (TASKGATE_URL), --key KEY (TASKGATE_API_KEY; default <data-dir>/admin.key), --json`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Where TASKGATE_URL, TASKGATE_API_KEY, TASKGATE_DATA_DIR come from (default: the process environment). */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

class UsageError extends Error {}

type Flags = Record<string, string | boolean>;

function need(flags: Flags, name: string): string {
  const v = flags[name];
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} is required`);
  return v.trim();
}

function optInt(flags: Flags, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer`);
  return n;
}

function optStr(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

function resolveKey(flags: Flags, env: Record<string, string | undefined> | undefined): { client: (io: CliIo) => TaskgateClient } {
  const cfg = loadClientConfig(flags, env);
  let apiKey = cfg.apiKey;
  if (!apiKey) {
    try {
      apiKey = readFileSync(cfg.keyFile, 'utf8').trim() || undefined;
    } catch {
      throw new UsageError(`no API key: pass --key, set TASKGATE_API_KEY, or run where ${cfg.keyFile} exists`);
    }
  }
  return { client: (io) => new TaskgateClient({ baseUrl: cfg.url, apiKey, fetch: io.fetch }) };
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '-' : Array.isArray(r[c]) ? (r[c] as unknown[]).join(',') : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function printKey(io: CliIo, k: CreatedApiKey, json: boolean): void {
  if (json) return io.out(JSON.stringify(k, null, 2));
  io.out(k.key);
  io.err(`Created API key ${k.id} "${k.name}" in tenant ${k.tenant_id} with scopes ${k.scopes.join(', ')}${k.expires_at ? `, expiring ${k.expires_at}` : ''}.`);
  io.err('The key above is shown only once: store it now.');
}

/** Runs `tenants …` or `keys …`; returns the process exit code. */
export async function runAdminCommand(group: string, args: string[], flags: Flags, io: CliIo): Promise<number> {
  const env = io.env;
  const json = flags.json === true;
  const sub = args[0];
  try {
    if (group === 'tenants' && sub === 'create') {
      const perMin = optInt(flags, 'rate-per-min');
      const burst = optInt(flags, 'burst');
      if ((perMin === undefined) !== (burst === undefined)) throw new UsageError('--rate-per-min and --burst go together');
      const t = await resolveKey(flags, env).client(io).createTenant({
        name: need(flags, 'name'), tenant_id: optStr(flags, 'id'), rate_limit: perMin !== undefined ? { per_minute: perMin, burst: burst! } : undefined,
      });
      io.out(json ? JSON.stringify(t, null, 2) : t.tenant_id);
      if (!json) io.err(`Created tenant ${t.tenant_id} "${t.name}".`);
      return 0;
    }
    if (group === 'tenants' && sub === 'list') {
      const page = await resolveKey(flags, env).client(io).listTenants({ limit: optInt(flags, 'limit'), offset: optInt(flags, 'offset') });
      io.out(json ? JSON.stringify(page, null, 2) : table(page.tenants.map((t) => ({ ...t, rate_limit: t.rate_limit ? `${t.rate_limit.per_minute}/min burst ${t.rate_limit.burst}` : 'default' })), ['tenant_id', 'name', 'rate_limit', 'created_at']));
      return 0;
    }
    if (group === 'keys' && sub === 'create') {
      const scopes = need(flags, 'scopes').split(',').map((s) => s.trim()).filter(Boolean) as Scope[];
      const body = { name: need(flags, 'name'), scopes, expires_at: optStr(flags, 'expires-at') };
      const client = resolveKey(flags, env).client(io);
      const tenant = optStr(flags, 'tenant');
      const key = tenant ? await client.createTenantApiKey(tenant, { ...body, user_id: optStr(flags, 'user') }) : await client.createApiKey(body);
      printKey(io, key, json);
      return 0;
    }
    if (group === 'keys' && sub === 'list') {
      const page = await resolveKey(flags, env).client(io).listApiKeys({ limit: optInt(flags, 'limit'), offset: optInt(flags, 'offset') });
      io.out(json ? JSON.stringify(page, null, 2) : table(page.api_keys, ['id', 'name', 'prefix', 'scopes', 'status', 'expires_at', 'created_at']));
      return 0;
    }
    if (group === 'keys' && sub === 'revoke') {
      const id = args[1];
      if (!id) throw new UsageError('usage: taskgate keys revoke KEY_ID');
      await resolveKey(flags, env).client(io).revokeApiKey(id);
      io.out(json ? JSON.stringify({ id, revoked: true }) : `Revoked ${id}.`);
      return 0;
    }
    throw new UsageError(`unknown command: ${group} ${sub ?? ''}`.trim());
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`taskgate: ${err.message}\n\n${ADMIN_HELP}`);
      return 2;
    }
    if (err instanceof TaskgateError) {
      io.err(`taskgate: ${err.code}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
