// Settings of the client-side CLI commands (`taskgate tenants|keys …`): which server, which key.
import { join } from 'node:path';
import { DEFAULT_DATA_DIR } from './index.js';

export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

export interface ClientConfig {
  /** --url, TASKGATE_URL, or http://127.0.0.1:8080. */
  readonly url: string;
  /** --key or TASKGATE_API_KEY; when absent the CLI reads `keyFile`. */
  readonly apiKey: string | undefined;
  /** `<data dir>/admin.key`, written by the server on first start. */
  readonly keyFile: string;
}

export function loadClientConfig(flags: Record<string, string | boolean>, env: Record<string, string | undefined> = process.env): ClientConfig {
  const s = (v: string | boolean | undefined) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
  const dataDir = s(flags['data-dir']) ?? s(env.TASKGATE_DATA_DIR) ?? DEFAULT_DATA_DIR;
  return Object.freeze({
    url: s(flags.url) ?? s(env.TASKGATE_URL) ?? DEFAULT_SERVER_URL,
    apiKey: s(flags.key) ?? s(env.TASKGATE_API_KEY),
    keyFile: join(dataDir, 'admin.key'),
  });
}
