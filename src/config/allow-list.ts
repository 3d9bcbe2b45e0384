// TASKGATE_HTTP_ALLOW_LIST entries (host names, IP addresses, CIDRs of either family), read by one
// parser for the check at start and for the SSRF guard (executors/ssrf.ts): an entry the start
// accepts is one the guard can match, and an unreadable one stops the start instead of throwing
// RangeError on every private target at run time (`10.0.0.0/99`) or never matching (`127.0.0/8`).
import { isIP } from 'node:net';
import { ConfigError, list } from './parse.js';

export type AllowListEntry =
  | { kind: 'host'; host: string }
  | { kind: 'cidr'; net: string; bits: number; family: 'ipv4' | 'ipv6' }
  | { kind: 'invalid'; reason: string };

// letters, digits, `-`, `_` and dots: a name as URL.hostname gives it, without port or scheme
const HOST_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

export function parseAllowListEntry(entry: string): AllowListEntry {
  const slash = entry.indexOf('/');
  if (slash === -1) {
    if (isIP(entry) || HOST_NAME.test(entry)) return { kind: 'host', host: entry };
    return { kind: 'invalid', reason: 'not a host name, an IP address or a CIDR' };
  }
  const net = entry.slice(0, slash);
  const bitsRaw = entry.slice(slash + 1);
  const version = isIP(net);
  if (version === 0) return { kind: 'invalid', reason: `${JSON.stringify(net)} is not an IP address` };
  const max = version === 6 ? 128 : 32;
  if (!/^\d{1,3}$/.test(bitsRaw) || Number(bitsRaw) > max) return { kind: 'invalid', reason: `the prefix length must be an integer from 0 to ${max}` };
  return { kind: 'cidr', net, bits: Number(bitsRaw), family: version === 6 ? 'ipv6' : 'ipv4' };
}

/** The comma-separated list; a ConfigError naming the setting and the first unreadable entry. */
export function httpAllowList(name: string, raw: string | undefined): string[] {
  const entries = list(raw);
  for (const entry of entries) {
    const parsed = parseAllowListEntry(entry);
    if (parsed.kind === 'invalid') throw new ConfigError(`${name}: ${JSON.stringify(entry)} is unreadable: ${parsed.reason} (host names, IP addresses or CIDRs such as 10.0.0.0/8, fd00::/8)`);
  }
  return entries;
}
