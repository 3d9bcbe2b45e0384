// JWT bearer tokens: HS256 with a shared secret, RS256/ES256 through a JWKS served by a local HTTP
// server. Valid tokens map sub/tenant_id/scopes; forged ones (wrong key, alg none, algorithm
// switching, expired, not yet valid, wrong audience or issuer, unknown tenant, tampered) get 401.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { newTenant, startTestServer, type TestServer } from '../helpers/server.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { looksLikeJwt, scopesFromClaims } from '../../src/auth/jwt.js';

const SECRET = 'test-secret-that-is-at-least-32-bytes-long!';
const ISSUER = 'https://issuer.example.test';
const AUDIENCE = 'taskgate-api';

let tdb: TestDb;
let hs: TestServer;
let rs: TestServer;
let es: TestServer;
let plain: TestServer;
let deadJwks: TestServer;
let failingJwks: TestServer;
let notJwks: TestServer;
let slowJwks: TestServer;
let jwksServer: Server;
let tenantId: string;
let rsaKey: CryptoKey | KeyObject;
let rsaPublic: CryptoKey | KeyObject;
let otherRsaKey: CryptoKey | KeyObject;
let ecKey: CryptoKey | KeyObject;

const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function claims(extra: JWTPayload = {}): JWTPayload {
  return { sub: 'user-42', tenant_id: tenantId, scopes: 'tasks:read tasks:list', iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, ...extra };
}

async function hs256(payload: JWTPayload, secret: string = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(createSecretKey(Buffer.from(secret)));
}

/** An HS256 token over a payload given as raw JSON text (numbers JSON.stringify cannot write). */
function signedRaw(payloadJson: string): string {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${Buffer.from(payloadJson).toString('base64url')}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

const me = (server: TestServer, token: string) => server.call('GET', '/api/v1/auth/me', undefined, { key: null, headers: { authorization: `Bearer ${token}` } });

beforeAll(async () => {
  tdb = await openTestDb();
  tenantId = (await newTenant(tdb.db, ['admin'])).tenantId;

  const rsa = await generateKeyPair('RS256', { extractable: true });
  rsaKey = rsa.privateKey;
  rsaPublic = rsa.publicKey;
  otherRsaKey = (await generateKeyPair('RS256')).privateKey;
  const ec = await generateKeyPair('ES256', { extractable: true });
  ecKey = ec.privateKey;
  const jwks = {
    keys: [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  jwksServer = createServer((req, res) => {
    // an IdP slow to answer
    if (req.url === '/slow.json') {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(jwks));
      }, 300);
      return;
    }
    // an IdP in trouble: its gateway's error page
    if (req.url === '/outage.json') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html>maintenance</html>');
    }
    res.writeHead(req.url === '/.well-known/jwks.json' ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/.well-known/jwks.json' ? jwks : {}));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/.well-known/jwks.json`;

  const common = { TASKGATE_JWT_ISSUER: ISSUER, TASKGATE_JWT_AUDIENCE: AUDIENCE, TASKGATE_ROLE: 'api' };
  hs = await startTestServer(tdb.db, { ...common, TASKGATE_JWT_SECRET: SECRET });
  rs = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: jwksUrl });
  es = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: jwksUrl, TASKGATE_JWT_ALGORITHM: 'ES256' });
  plain = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
  deadJwks = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: 'http://127.0.0.1:1/jwks.json' });
  const base = jwksUrl.replace('/.well-known/jwks.json', '');
  failingJwks = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: `${base}/unavailable.json`, TASKGATE_AUTH_FAILURE_BURST: '2' });
  notJwks = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: `${base}/outage.json`, TASKGATE_AUTH_FAILURE_BURST: '2' });
  slowJwks = await startTestServer(tdb.db, { ...common, TASKGATE_JWKS_URL: `${base}/slow.json`, TASKGATE_AUTH_FAILURES_PER_MIN: '60', TASKGATE_AUTH_FAILURE_BURST: '5' });
});
afterAll(async () => {
  for (const s of [hs, rs, es, plain, deadJwks, failingJwks, notJwks, slowJwks]) await s?.close();
  await new Promise((resolve) => jwksServer?.close(resolve));
  await tdb?.close();
});

describe('HS256 with TASKGATE_JWT_SECRET', () => {
  it('maps sub, tenant_id and scopes (space-separated string or array) to the principal', async () => {
    const res = await me(hs, await hs256(claims()));
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ principal_type: 'jwt', tenant_id: tenantId, user_id: 'user-42', subject: 'user-42', scopes: ['tasks:read', 'tasks:list'] });
    const arr = await me(hs, await hs256(claims({ scopes: ['tasks:execute', 'bogus:scope', 42] as unknown as string[] })));
    expect(arr.body.scopes).toEqual(['tasks:execute']);
    // also taken from X-API-Key, which clients often use for any credential
    const viaHeader = await hs.call('GET', '/api/v1/auth/me', undefined, { key: await hs256(claims()) });
    expect(viaHeader.status).toBe(200);
  });

  it('scopes gate routes as for API keys; the tenant is the claimed one', async () => {
    const reader = await hs256(claims({ scopes: 'tasks:read' }));
    const submit = await hs.call('POST', '/api/v1/tasks', { task_definition_id: 'noop' }, { key: null, headers: { authorization: `Bearer ${reader}` } });
    expect(submit.status).toBe(403);
    expect(submit.body.error.details.required_scope).toBe('tasks:execute');
    const writer = await hs256(claims({ scopes: 'tasks:execute tasks:read' }));
    const ok = await hs.call('POST', '/api/v1/tasks', { task_definition_id: 'noop' }, { key: null, headers: { authorization: `Bearer ${writer}` } });
    expect(ok.status).toBe(200);
    const task = await hs.call('GET', `/api/v1/tasks/${ok.body.task_id}`, undefined, { key: null, headers: { authorization: `Bearer ${writer}` } });
    expect(task.status).toBe(200);
    // another tenant's subject does not see it
    const other = await newTenant(tdb.db, ['admin']);
    const foreign = await hs256(claims({ tenant_id: other.tenantId, scopes: 'admin' }));
    expect((await hs.call('GET', `/api/v1/tasks/${ok.body.task_id}`, undefined, { key: null, headers: { authorization: `Bearer ${foreign}` } })).status).toBe(404);
  });

  it('tolerates clock skew within 30 s, and no more', async () => {
    expect((await me(hs, await hs256(claims({ exp: now() - 10 })))).status).toBe(200);
    expect((await me(hs, await hs256(claims({ nbf: now() + 10 })))).status).toBe(200);
    expect((await me(hs, await hs256(claims({ exp: now() - 120 })))).status).toBe(401);
    expect((await me(hs, await hs256(claims({ nbf: now() + 120 })))).status).toBe(401);
    expect((await me(hs, await hs256(claims({ iat: now() + 10 })))).status).toBe(200);
    // issued in the future beyond the skew: refused (jose checks only that iat is a number)
    expect((await me(hs, await hs256(claims({ iat: now() + 3000, exp: now() + 3300 })))).status).toBe(401);
  });

  it.each<[string, () => Promise<string>]>([
    ['signed with another secret', () => hs256(claims(), 'another-secret-that-is-also-32-bytes-long')],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
    ['alg none with a signature', async () => `${b64({ alg: 'none' })}.${b64(claims())}.c2lnbmF0dXJl`],
    ['HS512 instead of the configured HS256', () => hs256(claims(), SECRET, 'HS512')],
    ['expired', () => hs256(claims({ exp: now() - 3600 }))],
    ['without exp', () => hs256(claims({ exp: undefined }))],
    ['for another audience', () => hs256(claims({ aud: 'someone-else' }))],
    ['without audience', () => hs256(claims({ aud: undefined }))],
    ['from another issuer', () => hs256(claims({ iss: 'https://evil.example' }))],
    ['for a tenant that does not exist', () => hs256(claims({ tenant_id: 'tnt_nope' }))],
    ['without tenant_id', () => hs256(claims({ tenant_id: undefined }))],
    ['without sub', () => hs256(claims({ sub: undefined }))],
    ['with a tenant_id that is not a string', () => hs256(claims({ tenant_id: { $ne: null } as unknown as string }))],
    ['tampered after signing', async () => {
      const [h, , s] = (await hs256(claims({ scopes: 'tasks:read' }))).split('.');
      return `${h}.${b64(claims({ scopes: 'admin' }))}.${s}`;
    }],
    ['truncated', async () => (await hs256(claims())).slice(0, -5)],
    // past the Date range: its expiry was an Invalid Date (a 500 creating a key, a stream timer every 1 ms)
    ['with exp 1e20', () => hs256(claims({ exp: 1e20 }))],
    ['with exp 1e309 (Infinity once parsed)', async () => signedRaw(JSON.stringify(claims({ exp: 424242 })).replace('424242', '1e309'))],
    ['with iat -1e309', async () => signedRaw(JSON.stringify(claims({ iat: 424242 })).replace('424242', '-1e309'))],
    ['with nbf -1e20', () => hs256(claims({ nbf: -1e20 }))],
  ])('refuses a token %s', async (_name, make) => {
    const res = await me(hs, await make());
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('UNAUTHORIZED');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('a server without JWT configuration refuses every token', async () => {
    expect((await me(plain, await hs256(claims()))).status).toBe(401);
  });
});

describe('RS256 and ES256 through a JWKS URL', () => {
  const rs256 = (payload: JWTPayload, key: CryptoKey | KeyObject = rsaKey, kid = 'rsa-1') =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid }).sign(key);

  it('accepts a token signed by a key in the set', async () => {
    const res = await me(rs, await rs256(claims()));
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ principal_type: 'jwt', tenant_id: tenantId });
    const ec = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'ec-1' }).sign(ecKey);
    expect((await me(es, ec)).status).toBe(200);
  });

  it.each<[string, () => Promise<string>]>([
    ['signed by another key under a known kid', () => rs256(claims(), otherRsaKey)],
    ['with an unknown kid', () => rs256(claims(), otherRsaKey, 'rsa-9')],
    ['HS256 keyed with the public key (algorithm confusion)', async () => {
      const pem = await exportSPKI(rsaPublic as CryptoKey);
      return new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' }).sign(createSecretKey(Buffer.from(pem)));
    }],
    ['ES256 when the server pins RS256', () => new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'ec-1' }).sign(ecKey)],
    ['alg none', async () => `${b64({ alg: 'none', kid: 'rsa-1' })}.${b64(claims())}.`],
    ['expired', () => rs256(claims({ exp: now() - 3600 }))],
    ['for another audience', () => rs256(claims({ aud: 'other' }))],
  ])('refuses a token %s', async (_name, make) => {
    expect((await me(rs, await make())).status).toBe(401);
  });

  it('answers 503 (not 401) while the key set cannot be fetched', async () => {
    const res = await me(deadJwks, await rs256(claims()));
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
  });

  it('made-up tokens sent at once while the key set is slow get no more 401s than the failure budget; the rest 429', async () => {
    const tokens = await Promise.all(Array.from({ length: 60 }, (_, i) => rs256(claims({ sub: `guess-${i}` }), otherRsaKey, `guess-${i}`)));
    const statuses = await Promise.all(tokens.map(async (t) => (await me(slowJwks, t)).status));
    const counts: Record<number, number> = {};
    for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
    expect(counts[401] ?? 0).toBeLessThanOrEqual(5);
    expect((counts[401] ?? 0) + (counts[429] ?? 0), JSON.stringify(counts)).toBe(60);
  });

  it('valid tokens sent at once, more than the failure budget, are all answered: a lookup slot only delays them', async () => {
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => rs256(claims({ sub: `user-${i}` }))));
    const statuses = await Promise.all(tokens.map(async (t) => (await me(rs, t)).status));
    expect(new Set(statuses)).toEqual(new Set([200]));
  });

  it('answers 503 while the key set answers an HTTP error or is no key set, and counts no failed authentications', async () => {
    for (const server of [failingJwks, notJwks]) {
      // more than the failure burst (2): none is the client's failure
      for (let i = 0; i < 4; i++) {
        const res = await me(server, await rs256(claims()));
        expect(res.status, res.text).toBe(503);
        expect(res.body.error.code).toBe('UNAVAILABLE');
      }
    }
  });
});

describe('configuration and helpers', () => {
  const base = { TASKGATE_DATA_DIR: '/tmp/x', TASKGATE_JWT_ISSUER: ISSUER, TASKGATE_JWT_AUDIENCE: AUDIENCE };
  it.each<[string, Record<string, string>]>([
    ['both a secret and a JWKS URL', { TASKGATE_JWT_SECRET: SECRET, TASKGATE_JWKS_URL: 'https://idp.example/jwks' }],
    ['RS256 with only a secret', { TASKGATE_JWT_SECRET: SECRET, TASKGATE_JWT_ALGORITHM: 'RS256' }],
    ['HS256 with only a JWKS URL', { TASKGATE_JWKS_URL: 'https://idp.example/jwks', TASKGATE_JWT_ALGORITHM: 'HS256' }],
    ['an unknown algorithm', { TASKGATE_JWT_SECRET: SECRET, TASKGATE_JWT_ALGORITHM: 'none' }],
    ['a JWKS over plain http to a remote host', { TASKGATE_JWKS_URL: 'http://idp.example/jwks' }],
    ['an algorithm without keys', { TASKGATE_JWT_ALGORITHM: 'HS256' }],
    ['a secret without an issuer', { TASKGATE_JWT_SECRET: SECRET, TASKGATE_JWT_ISSUER: '' }],
    ['a JWKS URL without an audience', { TASKGATE_JWKS_URL: 'https://idp.example/jwks', TASKGATE_JWT_AUDIENCE: ' ' }],
  ])('refuses %s', (_name, env) => {
    expect(() => loadConfig({}, { ...base, ...env })).toThrow(ConfigError);
  });

  it('defaults: HS256 for a secret, RS256 for a JWKS URL, 30 s skew', () => {
    expect(loadConfig({}, { ...base, TASKGATE_JWT_SECRET: SECRET }).security.jwt).toMatchObject({ algorithm: 'HS256', clockToleranceS: 30 });
    expect(loadConfig({}, { ...base, TASKGATE_JWKS_URL: 'https://idp.example/jwks' }).security.jwt).toMatchObject({ algorithm: 'RS256' });
    expect(loadConfig({}, base).security.jwt).toBeUndefined();
  });

  it('tells tokens from API keys by shape, and reads scopes leniently', () => {
    expect(looksLikeJwt('sk_abcdefabcdef_' + 'x'.repeat(43))).toBe(false);
    expect(looksLikeJwt('aaa.bbb.ccc')).toBe(true);
    expect(looksLikeJwt('a.b')).toBe(false);
    expect(scopesFromClaims({ scope: 'tasks:read  tasks:list' })).toEqual(['tasks:read', 'tasks:list']);
    expect(scopesFromClaims({ scopes: 'admin' })).toEqual(['admin']);
    expect(scopesFromClaims({ scopes: 7 } as unknown as JWTPayload)).toEqual([]);
  });
});
