// The operator dashboard (PRODUCT.md §6): static files from dashboard/ plus the SDK's compiled
// browser modules from dist/sdk/ (the dashboard talks to the API through the SDK only), read into
// memory once at registration and served from fixed allow-lists (no path is ever built from a
// request). Public like /docs: the pages hold no data; every figure they show comes from the API
// with the key the user pastes in. Hidden from the OpenAPI document.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/errors.js';

/** Resolves to the repository's dashboard/ from src/api/routes and from dist/api/routes alike. */
export const DASHBOARD_DIR = new URL('../../../dashboard/', import.meta.url);

/**
 * The compiled SDK, `npm run build`'s dist/sdk/ — from the repository root, so the same folder
 * whether the server runs from dist/ (npm start, an installed package) or from src/ under vitest
 * (`npm test` builds first). Registration fails, naming `npm run build`, when it is missing.
 */
export const SDK_DIR = new URL('../../../dist/sdk/', import.meta.url);

/** Everything dashboard/ serves; a file not listed here is a 404 (test/dashboard checks the folder matches). */
export const DASHBOARD_FILES = [
  'index.html', 'app.css', 'app.js', 'api.js', 'dom.js',
  'tasks.js', 'task-detail.js', 'submit.js', 'approvals.js', 'definitions.js',
] as const;

/**
 * The SDK modules the dashboard imports: dist/sdk/index.js and every module it imports (`import
 * type`s are erased, so nothing of src/contract). Served as /dashboard/<name> by the same route as
 * the dashboard's own files — the compiled modules import each other as `./client.js`, so they only
 * need to sit together. test/dashboard checks this list is closed under their imports.
 */
export const DASHBOARD_SDK_FILES = ['index.js', 'client.js', 'transport.js', 'handle.js', 'sse.js', 'errors.js'] as const;

/** The dashboard's own policy: scripts and styles from the server only, no inline code or styles, calls to itself only. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** The file's bytes; a missing one throws `missing` (its message says what to do). */
function read(dir: URL, name: string, missing = `dashboard file ${name} is missing from ${dir.pathname}`): Buffer {
  try {
    return readFileSync(new URL(name, dir));
  } catch (err) {
    throw new Error(missing, { cause: err });
  }
}

function asset(name: string, body: Buffer): Asset {
  const type = TYPES[name.slice(name.lastIndexOf('.') + 1)];
  if (!type) throw new Error(`dashboard file ${name} has no known content type`);
  // strong validator: the content's hash (a restart with the same files keeps browsers' copies valid)
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** Every served file by its name under /dashboard/; throws when one is missing (for the SDK's, naming `npm run build`). */
function loadAssets(dir: URL = DASHBOARD_DIR, sdkDir: URL = SDK_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>(DASHBOARD_FILES.map((name) => [name, asset(name, read(dir, name))]));
  for (const name of DASHBOARD_SDK_FILES) {
    if (assets.has(name)) throw new Error(`dashboard/${name} and the SDK's ${name} would both be /dashboard/${name}: rename the dashboard's`);
    const missing = `the dashboard serves the compiled SDK, but ${name} is missing from ${sdkDir.pathname}: run \`npm run build\` (npm start and npm test do)`;
    assets.set(name, asset(name, read(sdkDir, name, missing)));
  }
  return assets;
}

/** True when If-None-Match names this ETag (or `*`); weak and strong forms compare equal (RFC 9110 §13.1.2). */
function notModified(req: FastifyRequest, etag: string): boolean {
  const header = req.headers['if-none-match'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === etag;
  });
}

function send(req: FastifyRequest, reply: FastifyReply, asset: Asset) {
  // no-cache: the browser keeps the copy but asks each time (a 304 costs a round trip, never stale code)
  reply.header('etag', asset.etag).header('cache-control', 'no-cache');
  if (notModified(req, asset.etag)) return reply.code(304).send();
  return reply.type(asset.type).send(asset.body);
}

export async function dashboardRoutes(app: FastifyInstance, opts: { dir?: URL; sdkDir?: URL } = {}): Promise<void> {
  const assets = loadAssets(opts.dir, opts.sdkDir);
  const index = assets.get('index.html')!;
  const config = { public: true, csp: DASHBOARD_CSP };
  const schema = { hide: true };

  app.get('/', { config, schema }, async (_req, reply) => reply.redirect('/dashboard/', 302));
  // the router ignores trailing slashes, so one route answers both: only the slashed URL is the
  // page (its relative asset URLs resolve under /dashboard/)
  app.get('/dashboard', { config, schema }, async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (!path.endsWith('/')) return reply.redirect('/dashboard/', 302);
    return send(req, reply, index);
  });
  app.get<{ Params: { file: string } }>('/dashboard/:file', { config, schema }, async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset) throw new ApiError('NOT_FOUND', `No dashboard file ${req.params.file}`);
    return send(req, reply, asset);
  });
}
