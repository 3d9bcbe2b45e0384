// The SSRF guard of outbound HTTP (executors/ssrf.ts): which addresses are refused, how the
// allow-list (host names, IPs, CIDRs of either family) lets some through, and the connect-time
// lookup that judges every address a connection would actually use (DNS rebinding).
import { describe, expect, it } from 'vitest';
import { assertPublicUrl, guardedLookup, isBlockedAddress } from '../../src/executors/ssrf.js';

type Answer = { err: NodeJS.ErrnoException | null; address: unknown; family?: number };
const lookupWith = (allow: string[], host: string, options: { all?: boolean } | number) =>
  new Promise<Answer>((resolve) => guardedLookup(allow)(host, options, (err, address, family) => resolve({ err, address, family })));

describe('isBlockedAddress', () => {
  it('refuses every private, shared, reserved, loopback, link-local, multicast and unspecified range', () => {
    for (const ip of [
      '0.0.0.0', '10.255.0.1', '100.64.0.1', '127.8.8.8', '169.254.0.1', '172.31.255.255', '192.0.0.8', '192.168.1.1',
      '198.18.0.1', '224.0.0.1', '239.255.255.250', '255.255.255.255',
      '::', '::1', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1', '64:ff9b::a00:1',
      '::127.0.0.1', '::7f00:1', 'fec0::1', '2002:7f00:1::', '2002:a00:1::1', '64:ff9b:1::a00:1', '100::1',
      '::ffff:10.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:a9fe:a9fe',
    ]) expect(isBlockedAddress(ip), ip).toBe(true);
  });
  it('lets public addresses of both families through', () => {
    for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(isBlockedAddress(ip), ip).toBe(false);
    }
  });
});

describe('assertPublicUrl', () => {
  it('refuses other protocols, names that do not resolve, and names resolving to a blocked address', async () => {
    await expect(assertPublicUrl(new URL('ftp://93.184.216.34/'), [])).rejects.toThrow(/only http and https/);
    await expect(assertPublicUrl(new URL('http://no-such-host.invalid/'), [])).rejects.toThrow(/cannot resolve host no-such-host.invalid/);
    await expect(assertPublicUrl(new URL('http://localhost:1/'), [])).rejects.toThrow(/refusing to call localhost/);
    // what a name resolves to is not told (task errors are the tenant's to read)
    await expect(assertPublicUrl(new URL('http://localhost:1/'), [])).rejects.not.toThrow(/127\.0\.0\.1|::1/);
    await expect(assertPublicUrl(new URL('http://[::1]:1/'), [])).rejects.toThrow(/refusing to call ::1/);
    await expect(assertPublicUrl(new URL('https://93.184.216.34/'), [])).resolves.toBeUndefined();
  });
  it('allows by host name, exact address or CIDR of either family, and nothing else', async () => {
    await expect(assertPublicUrl(new URL('http://localhost:1/'), ['localhost'])).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://10.1.2.3/'), ['10.1.2.3'])).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://10.1.2.3/'), ['10.1.0.0/16'])).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://10.2.2.3/'), ['10.1.0.0/16'])).rejects.toThrow(/refusing/);
    await expect(assertPublicUrl(new URL('http://[fd00::5]/'), ['fd00::/8'])).resolves.toBeUndefined();
    await expect(assertPublicUrl(new URL('http://[fe80::5]/'), ['fd00::/8', '127.0.0.1', 'example.internal'])).rejects.toThrow(/refusing/);
  });
});

describe('guardedLookup (connect time)', () => {
  it('refuses a name whose addresses are blocked, in both lookup forms', async () => {
    for (const options of [{ all: true }, {}, 4]) {
      const a = await lookupWith([], 'localhost', options);
      expect(a.err?.code, JSON.stringify(options)).toBe('ESSRF');
      expect(a.err?.message).toMatch(/refusing to connect to localhost/);
      expect(a.err?.message).not.toMatch(/127\.0\.0\.1|::1/);
    }
  });
  it('answers as dns.lookup does when the addresses are allowed', async () => {
    const all = await lookupWith(['localhost'], 'localhost', { all: true });
    expect(all.err).toBeNull();
    expect(Array.isArray(all.address) && all.address.length).toBeGreaterThan(0);
    const one = await lookupWith(['127.0.0.0/8', '::1'], 'localhost', {});
    expect(one.err).toBeNull();
    expect(typeof one.address).toBe('string');
    expect([4, 6]).toContain(one.family);
  });
  it('passes a resolution failure on', async () => {
    const a = await lookupWith([], 'no-such-host.invalid', {});
    expect(a.err?.code).toMatch(/ENOTFOUND|EAI_AGAIN/);
  });
});
