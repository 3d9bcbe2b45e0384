// SSRF guard for outbound HTTP from tasks: resolves the host and refuses private, loopback,
// link-local, unique-local, multicast and unspecified addresses unless allow-listed
// (TASKGATE_HTTP_ALLOW_LIST: host names, IPs or CIDRs).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { parseAllowListEntry } from '../config/allow-list.js';
import { PermanentError } from './types.js';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4');
// ::/96 also covers the unspecified address and IPv4-compatible ones; fec0::/10 is the deprecated
// site-local range, 2002::/16 6to4 (it can carry a private IPv4 address), 64:ff9b:1::/48 local NAT64
for (const [net, bits] of [
  ['::', 96], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['64:ff9b:1::', 48],
  ['100::', 64], ['2002::', 16],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

function allowListMatches(allow: readonly string[], host: string, ip: string): boolean {
  const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
  const name = hostKey(host);
  for (const entry of allow) {
    if (hostKey(entry) === name || entry === ip) return true;
    // the start refused unreadable entries (config/allow-list.ts); one given here anyway matches nothing
    const parsed = parseAllowListEntry(entry);
    if (parsed.kind === 'cidr') {
      const list = new BlockList();
      list.addSubnet(parsed.net, parsed.bits, parsed.family);
      if (list.check(ip, family)) return true;
    }
  }
  return false;
}

/** Host names compare without case and without a final dot (`Example.internal.` is `example.internal`). */
const hostKey = (h: string): string => h.toLowerCase().replace(/\.$/, '');

export function isBlockedAddress(ip: string): boolean {
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address it carries
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return blocked.check(mapped[1]!, 'ipv4');
  return blocked.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/** Throws PermanentError when the URL is not http(s) or resolves to a forbidden address. */
export async function assertPublicUrl(url: URL, allowList: readonly string[]): Promise<void> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PermanentError(`only http and https URLs are allowed, got ${url.protocol}`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true, verbatim: true }).catch(() => [])).map((a) => a.address);
  if (addresses.length === 0) throw new PermanentError(`cannot resolve host ${host}`);
  for (const ip of addresses) {
    if (isBlockedAddress(ip) && !allowListMatches(allowList, host, ip)) {
      // the address itself is not told: task errors are read by the tenant, and a name's private
      // address is the operator's business (the host was given by the tenant, so naming it is not)
      throw new PermanentError(`refusing to call ${host}: it is or resolves to a private, loopback or link-local address; allow it with TASKGATE_HTTP_ALLOW_LIST`);
    }
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A `lookup` for node:http(s) that checks every address the connection will actually use, so a
 * DNS answer that changes between check and connect (rebinding) cannot slip through.
 */
export function guardedLookup(allowList: readonly string[]) {
  return (hostname: string, options: { all?: boolean; family?: number } | number, callback: LookupCallback): void => {
    const all = typeof options === 'object' && options.all === true;
    lookup(hostname, { all: true, verbatim: true }).then(
      (addrs) => {
        for (const a of addrs) {
          if (isBlockedAddress(a.address) && !allowListMatches(allowList, hostname, a.address)) {
            const err = new Error(`refusing to connect to ${hostname}: it resolves to a private, loopback or link-local address`) as NodeJS.ErrnoException;
            err.code = 'ESSRF';
            callback(err, all ? [] : '', 0);
            return;
          }
        }
        if (all) callback(null, addrs);
        else callback(null, addrs[0]!.address, addrs[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, all ? [] : '', 0),
    );
  };
}
