// The operator dashboard (PRODUCT.md §6): static files from dashboard/, read into memory once at
// registration and served from a fixed allow-list (no path is ever built from a request). Public
// like /docs: the pages hold no data; every figure they show comes from the API with the key
// the user pastes in. Hidden from the OpenAPI document.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../contract/errors.js';

/** Resolves to the repository's dashboard/ from src/api/routes and from dist/api/routes alike. */
export const DASHBOARD_DIR = new URL('../../../dashboard/', import.meta.url);

/** Everything dashboard/ serves; a file not listed here is a 404 (test/dashboard checks the folder matches). */
export const DASHBOARD_FILES = [
  'index.html', 'app.css', 'app.js', 'api.js', 'dom.js', 'sse.js',
  'tasks.js', 'task-detail.js', 'submit.js', 'approvals.js', 'definitions.js',
] as const;

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

function load(dir: URL, name: string): Asset {
  let body: Buffer;
  try {
    body = readFileSync(new URL(name, dir));
  } catch (err) {
    throw new Error(`dashboard file ${name} is missing from ${dir.pathname}`, { cause: err });
  }
  const type = TYPES[name.slice(name.lastIndexOf('.') + 1)];
  if (!type) throw new Error(`dashboard file ${name} has no known content type`);
  // strong validator: the content's hash (a restart with the same files keeps browsers' copies valid)
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
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

export async function dashboardRoutes(app: FastifyInstance, opts: { dir?: URL } = {}): Promise<void> {
  const dir = opts.dir ?? DASHBOARD_DIR;
  const assets = new Map<string, Asset>(DASHBOARD_FILES.map((name) => [name, load(dir, name)]));
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
