// Opaque, URL-safe, time-sortable ids with a type prefix (`task_…`, `sess_…`, `key_…`).
// 48 bits of milliseconds (10 Crockford base32 chars) + 80 random bits (16 chars), ULID-style.

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * Ids on the wire (paths, queries, bodies) must match this, else 400 — and be neither `.` nor
 * `..`, which every URL parser folds away as a path segment (`%2E%2E` too): a session, definition
 * or tenant so named could be created but never read, changed or deleted.
 */
export const ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9:_\-.]{1,128}$/;

export function isValidId(value: string): boolean {
  return ID_PATTERN.test(value);
}

function encodeTime(ms: number): string {
  let out = '';
  let rest = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[rest % 32] + out;
    rest = Math.floor(rest / 32);
  }
  return out;
}

// CSPRNG bytes drawn 4 KiB at a time (one getRandomValues call per ~250 ids instead of one per
// id: it was 4 % of a submit's CPU); each byte is handed out once.
const pool = new Uint8Array(4096);
let poolPos = pool.length;

function takeRandom(count: number): number {
  if (poolPos + count > pool.length) {
    globalThis.crypto.getRandomValues(pool);
    poolPos = 0;
  }
  const at = poolPos;
  poolPos += count;
  return at;
}

function randomChars(count: number): string {
  const at = takeRandom(count);
  let out = '';
  for (let i = at; i < at + count; i++) out += ALPHABET[pool[i]! & 31];
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** `bytes` random bytes as lowercase hex (trace ids). */
export function randomHex(bytes: number): string {
  const at = takeRandom(bytes);
  let out = '';
  for (let i = at; i < at + bytes; i++) out += HEX[pool[i]!];
  return out;
}

export function newId(prefix: string, nowMs: number = Date.now()): string {
  return `${prefix}_${encodeTime(nowMs)}${randomChars(16)}`;
}

export const newTaskId = (): string => newId('task');
export const newSessionId = (): string => newId('sess');
export const newKeyId = (): string => newId('key');
export const newTenantId = (): string => newId('tnt');

export function newUuid(): string {
  return globalThis.crypto.randomUUID();
}
