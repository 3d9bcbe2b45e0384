// GET /api/v1/admin/backup as a byte stream: the embedded PGlite database's online backup, for
// `taskgate backup`. Apart from TaskgateClient (whose JSON calls read every body as text), and not
// retried: each try builds the whole dump on the server.
import { errorForAnswer, unreachableError } from './errors.js';
import { checkApiKey, checkBaseUrl, credentialHeaders, userAgent } from './transport.js';

export interface BackupDownload {
  /** The body: the gzip'd tarball. */
  body: ReadableStream<Uint8Array>;
  /** The file name the server suggests (Content-Disposition), e.g. `taskgate-backup-20261206T213000Z.tar.gz`. */
  fileName: string | undefined;
}

/** Asks the server for a backup; a non-2xx answer throws the SDK's typed error (409 on PostgreSQL). */
export async function downloadBackup(opts: { baseUrl: string; apiKey?: string; fetch?: typeof fetch; signal?: AbortSignal }): Promise<BackupDownload> {
  const baseUrl = checkBaseUrl(opts.baseUrl);
  const headers = { ...userAgent(undefined), ...credentialHeaders(checkApiKey(opts.apiKey)), accept: 'application/gzip, application/json' };
  let res: Response;
  try {
    res = await (opts.fetch ?? globalThis.fetch)(`${baseUrl}/api/v1/admin/backup`, { headers, signal: opts.signal });
  } catch (err) {
    throw unreachableError(baseUrl, err);
  }
  if (!res.ok || !res.body) throw errorForAnswer(res, await res.text().catch(() => ''));
  const fileName = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1];
  return { body: res.body, fileName };
}
