// Failed authentications per client address (TASKGATE_AUTH_FAILURES_PER_MIN / _BURST): past the
// burst, an address gets 429 with Retry-After before its credential is looked up, and it recovers
// at the refill rate. Requests without a credential are not counted.
import { describe, expect, it } from 'vitest';
import { openTestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, useTestServer, type TestServer } from '../helpers/server.js';
import { AuthFailureLimiter, addressBucket } from '../../src/auth/auth-failures.js';
import { parseTrustProxy } from '../../src/config/security.js';

const fixture = useTestServer({ TASKGATE_AUTH_FAILURES_PER_MIN: '60', TASKGATE_AUTH_FAILURE_BURST: '5' });

describe('failed authentications per address', () => {
  it('answers 429 with Retry-After past the burst, before looking the credential up, and recovers', async () => {
    for (let i = 0; i < 3; i++) expect((await fixture.server.call('GET', '/api/v1/tasks', undefined, { key: null })).status).toBe(401); // not counted
    for (let i = 0; i < 5; i++) {
      const res = await fixture.server.call('GET', '/api/v1/tasks', undefined, { key: `sk_madeUpPrefix_${'x'.repeat(40)}${i}` });
      expect(res.status).toBe(401);
    }
    const blocked = await fixture.server.call('GET', '/api/v1/tasks', undefined, { key: `sk_madeUpPrefix_${'y'.repeat(40)}` });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe('RATE_LIMITED');
    expect(blocked.body.error.message).toMatch(/failed authentication/);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // like every limited answer, it says which budget: this address's failed authentications
    expect(blocked.headers.get('x-ratelimit-limit')).toBe('60');
    expect(blocked.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(blocked.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
    // the address as a whole waits (its valid keys too: the limiter runs before any lookup)
    expect((await fixture.server.call('GET', '/api/v1/tasks', undefined, { key: ADMIN_KEY })).status).toBe(429);
    // public routes are not affected
    expect((await fixture.server.call('GET', '/health', undefined, { key: null })).status).toBe(200);
    // one token a second at 60 a minute
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await fixture.server.call('GET', '/api/v1/tasks', undefined, { key: ADMIN_KEY })).status).toBe(200);
  });
});

describe('behind a reverse proxy (TASKGATE_TRUST_PROXY)', () => {
  const fail = (srv: TestServer, forwardedFor: string, i: number) =>
    srv.call('GET', '/api/v1/tasks', undefined, { key: `sk_madeUpPrefix_${'z'.repeat(40)}${i}`, headers: { 'x-forwarded-for': forwardedFor } });

  const PROXIED = { TASKGATE_AUTH_FAILURES_PER_MIN: '60', TASKGATE_AUTH_FAILURE_BURST: '2', TASKGATE_TRUST_PROXY: 'loopback' };
  /** A server of its own on a database of its own, for `fn`. */
  const withServer = async (env: Record<string, string>, fn: (srv: TestServer) => Promise<void>) => {
    const tdb = await openTestDb();
    const srv = await startTestServer(tdb.db, env);
    try {
      await fn(srv);
    } finally {
      await srv.close();
      await tdb.close();
    }
  };

  it('trusted: each forwarded client has its own bucket; untrusted (the default): X-Forwarded-For is ignored', async () => {
    await withServer(PROXIED, async (proxied) => {
      for (let i = 0; i < 2; i++) expect((await fail(proxied, '203.0.113.7', i)).status).toBe(401);
      expect((await fail(proxied, '203.0.113.7', 9)).status).toBe(429);
      // another client behind the same proxy is not blocked with it
      expect((await fail(proxied, '203.0.113.8', 0)).status).toBe(401);
    });
    await withServer({ TASKGATE_AUTH_FAILURES_PER_MIN: '60', TASKGATE_AUTH_FAILURE_BURST: '2' }, async (direct) => {
      // a client cannot pick a fresh address per try by writing the header itself
      expect((await fail(direct, '198.51.100.1', 0)).status).toBe(401);
      expect((await fail(direct, '198.51.100.2', 1)).status).toBe(401);
      expect((await fail(direct, '198.51.100.3', 2)).status).toBe(429);
    });
  });

  it('an IPv6 client is one bucket per /64: a fresh address per try from its prefix is no fresh budget', async () => {
    await withServer(PROXIED, async (proxied) => {
      expect((await fail(proxied, '2001:db8:1:2::1', 0)).status).toBe(401);
      expect((await fail(proxied, '2001:db8:1:2:ffff:ee:dd:cc', 1)).status).toBe(401);
      expect((await fail(proxied, '2001:0db8:0001:0002:abcd::9', 2)).status).toBe(429);
      // the next /64 is another client
      expect((await fail(proxied, '2001:db8:1:3::1', 3)).status).toBe(401);
      // an IPv4-mapped address counts as its IPv4 address
      expect((await fail(proxied, '192.0.2.10', 4)).status).toBe(401);
      expect((await fail(proxied, '::ffff:192.0.2.10', 5)).status).toBe(401);
      expect((await fail(proxied, '192.0.2.10', 6)).status).toBe(429);
    });
  });

  it('addressBucket: IPv4 as is, IPv6 by /64, an address standing for one IPv4 host as that host', () => {
    expect(addressBucket('203.0.113.7')).toBe('203.0.113.7');
    // IPv4-mapped, in every notation, with or without a zone
    for (const a of ['::ffff:203.0.113.7', '::FFFF:203.0.113.7', '0:0:0:0:0:ffff:203.0.113.7', '::ffff:cb00:7107', '::ffff:203.0.113.7%eth0']) expect(addressBucket(a), a).toBe('203.0.113.7');
    // NAT64's well-known prefix: each translated IPv4 client its own bucket
    expect(addressBucket('64:ff9b::1.2.3.4')).toBe('1.2.3.4');
    expect(addressBucket('64:ff9b::5.6.7.8')).toBe('5.6.7.8');
    // ::/96 (loopback, IPv4-compatible): each address its own, not one bucket for all
    expect(addressBucket('::1')).toBe('0:0:0:0:0:0:0:1');
    expect(addressBucket('::1.2.3.4')).not.toBe(addressBucket('::1'));
    expect(addressBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressBucket('2001:DB8::')).toBe('2001:db8:0:0::/64');
    expect(addressBucket('2001:db8:a:b:c:d:e:f')).toBe('2001:db8:a:b::/64');
    expect(addressBucket('2001:db8:a:b:c:d:1.2.3.4')).toBe('2001:db8:a:b::/64');
    // not addresses: as given
    for (const a of ['', 'not:an::add::ress', '1::2::3', '1.2.3.4:80', '1:2:3:4:5:6:7:8:9', '::ffff:1.2.3.999', '::12345']) expect(addressBucket(a), a).toBe(a);
  });

  it('refuses settings that would trust any client', () => {
    expect(parseTrustProxy(undefined)).toBeUndefined();
    expect(parseTrustProxy('false')).toBeUndefined();
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy('10.0.0.0/8, loopback ,::1')).toEqual(['10.0.0.0/8', 'loopback', '::1']);
    expect(() => parseTrustProxy('true')).toThrow(/X-Forwarded-For/);
    expect(() => parseTrustProxy('11')).toThrow(/1-10/);
    expect(() => parseTrustProxy('10.0.0.0/33')).toThrow(/not an IP address/);
    expect(() => parseTrustProxy('proxy.internal')).toThrow(/not an IP address/);
  });
});

describe('AuthFailureLimiter', () => {
  it('refills at its rate up to the burst and forgets full buckets', () => {
    let now = 0;
    const l = new AuthFailureLimiter(60, 3, () => now);
    expect(l.retryAfterMs('a')).toBe(0);
    for (let i = 0; i < 3; i++) l.failed('a');
    expect(l.retryAfterMs('a')).toBe(1000);
    expect(l.retryAfterMs('b')).toBe(0);
    now += 400;
    expect(l.retryAfterMs('a')).toBe(600);
    now += 600;
    expect(l.retryAfterMs('a')).toBe(0);
    l.failed('a');
    expect(l.retryAfterMs('a')).toBe(1000);
    now += 60_000;
    expect(l.retryAfterMs('a')).toBe(0);
  });
});
