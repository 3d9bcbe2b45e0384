// Opaque, URL-safe, time-sortable ids with a type prefix (`task_…`, `sess_…`, `key_…`).
// 48 bits of milliseconds (10 Crockford base32 chars) + 80 random bits (16 chars), ULID-style.

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** Ids on the wire (paths, queries) must match this, else 400. */
export const ID_PATTERN = /^[A-Za-z0-9:_\-.]{1,128}$/;

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

function randomChars(count: number): string {
  const bytes = new Uint8Array(count);
  globalThis.crypto.getRandomValues(bytes);
  let out = '';
  for (const b of bytes) out += ALPHABET[b & 31];
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
