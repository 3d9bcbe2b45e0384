// `taskgate tenants create|update|list` and `taskgate keys create|list|revoke`: thin commands over the SDK,
// talking HTTP to a running server (--url), with the key from --key, TASKGATE_API_KEY or the
// server's <data-dir>/admin.key.
import type { CreatedApiKey, Scope, TenantView } from '../sdk/index.js';
import { commandHelp } from './args.js';
import { cliClient, exitCodeFor, need, optInt, optStr, table, UsageError, type CliIo, type Flags } from './shared.js';
import { ADMIN_HELP, GROUPS } from './specs.js';

function printKey(io: CliIo, k: CreatedApiKey, json: boolean): void {
  if (json) return io.out(JSON.stringify(k, null, 2));
  io.out(k.key ?? '(not shown again: a replayed answer)');
  io.err(`Created API key ${k.id} "${k.name}" in tenant ${k.tenant_id} with scopes ${k.scopes.join(', ')}${k.expires_at ? `, expiring ${k.expires_at}` : ''}.`);
  io.err('The key above is shown only once: store it now.');
}

const TENANT_COLUMNS = ['tenant_id', 'name', 'rate_limit', 'max_running', 'created_at'];
/** A tenant as a table row: its limits in words. */
const tenantRow = (t: TenantView) => ({
  ...t, rate_limit: t.rate_limit ? `${t.rate_limit.per_minute}/min burst ${t.rate_limit.burst}` : 'default', max_running: t.max_running ?? 'no cap',
});

/** `--rate-per-min N --burst N` (both or neither) as a rate limit; undefined when neither is given. */
function rateLimitFlags(flags: Flags): { per_minute: number; burst: number } | undefined {
  const perMin = optInt(flags, 'rate-per-min');
  const burst = optInt(flags, 'burst');
  if ((perMin === undefined) !== (burst === undefined)) throw new UsageError('--rate-per-min and --burst go together');
  return perMin !== undefined ? { per_minute: perMin, burst: burst! } : undefined;
}

/** Runs `tenants …` or `keys …`; returns the process exit code. */
export async function runAdminCommand(group: string, args: string[], flags: Flags, io: CliIo): Promise<number> {
  const json = flags.json === true;
  const sub = args[0];
  try {
    if (group === 'tenants' && sub === 'create') {
      const t = await cliClient(flags, io).createTenant({
        name: need(flags, 'name'), tenant_id: optStr(flags, 'id'), rate_limit: rateLimitFlags(flags), max_running: optInt(flags, 'max-running'),
      });
      io.out(json ? JSON.stringify(t, null, 2) : t.tenant_id);
      if (!json) io.err(`Created tenant ${t.tenant_id} "${t.name}".`);
      return 0;
    }
    if (group === 'tenants' && sub === 'update') {
      const rate = rateLimitFlags(flags);
      const maxRunning = optInt(flags, 'max-running');
      if (rate && flags['default-rate'] === true) throw new UsageError('--default-rate or --rate-per-min, not both');
      if (maxRunning !== undefined && flags['no-cap'] === true) throw new UsageError('--no-cap or --max-running, not both');
      const body = {
        name: optStr(flags, 'name'),
        rate_limit: flags['default-rate'] === true ? null : rate,
        max_running: flags['no-cap'] === true ? null : maxRunning,
      };
      if (Object.values(body).every((v) => v === undefined)) throw new UsageError('nothing to change: give --name, a rate limit option or a cap option');
      const t = await cliClient(flags, io).updateTenant(args[1]!, body);
      io.out(json ? JSON.stringify(t, null, 2) : table([tenantRow(t)], TENANT_COLUMNS));
      return 0;
    }
    if (group === 'tenants' && sub === 'list') {
      const page = await cliClient(flags, io).listTenants({ limit: optInt(flags, 'limit'), offset: optInt(flags, 'offset') });
      io.out(json ? JSON.stringify(page, null, 2) : table(page.tenants.map(tenantRow), TENANT_COLUMNS));
      return 0;
    }
    if (group === 'keys' && sub === 'create') {
      const scopes = need(flags, 'scopes').split(',').map((s) => s.trim()).filter(Boolean) as Scope[];
      const body = { name: need(flags, 'name'), scopes, expires_at: optStr(flags, 'expires-at') };
      const tenant = optStr(flags, 'tenant');
      // a key for the caller's own tenant is the caller's: an owner for it would be silently dropped
      if (!tenant && optStr(flags, 'user') !== undefined) throw new UsageError('keys create: --user goes with --tenant (a key for your own tenant is owned by you)');
      const client = cliClient(flags, io);
      const key = tenant ? await client.createTenantApiKey(tenant, { ...body, user_id: optStr(flags, 'user') }) : await client.createApiKey(body);
      printKey(io, key, json);
      return 0;
    }
    if (group === 'keys' && sub === 'list') {
      const page = await cliClient(flags, io).listApiKeys({ limit: optInt(flags, 'limit'), offset: optInt(flags, 'offset') });
      io.out(json ? JSON.stringify(page, null, 2) : table(page.api_keys, ['id', 'name', 'prefix', 'scopes', 'status', 'expires_at', 'created_at']));
      return 0;
    }
    if (group === 'keys' && sub === 'revoke') {
      const id = args[1];
      if (!id) throw new UsageError('usage: taskgate keys revoke KEY_ID');
      await cliClient(flags, io).revokeApiKey(id);
      io.out(json ? JSON.stringify({ id, revoked: true }) : `Revoked ${id}.`);
      return 0;
    }
    throw new UsageError(`unknown command: ${group} ${sub ?? ''}`.trim());
  } catch (err) {
    const spec = sub !== undefined && Object.hasOwn(GROUPS, group) && Object.hasOwn(GROUPS[group]!.commands, sub) ? GROUPS[group]!.commands[sub] : undefined;
    return exitCodeFor(err, io, spec ? commandHelp(spec) : ADMIN_HELP);
  }
}
