// GET /api/v1/admin/backup as a byte stream: the embedded PGlite database's online backup, for
// `taskgate backup`. Apart from TaskgateClient (whose JSON calls read every body as text), and not
// retried: each try builds the whole dump on the server.
import { errorBodyParts, errorForStatus, failureText, NetworkError } from './errors.js';
import { checkBaseUrl, userAgent } from './transport.js';

export interface BackupDownload {
  /** The body: the gzip'd tarball. */
  body: ReadableStream<Uint8Array>;
  /** The file name the server suggests (Content-Disposition), e.g. `taskgate-backup-20261206T213000Z.tar.gz`. */
  fileName: string | undefined;
}

/** Asks the server for a backup; a non-2xx answer throws the SDK's typed error (409 on PostgreSQL). */
export async function downloadBackup(opts: { baseUrl: string; apiKey?: string; fetch?: typeof fetch; signal?: AbortSignal }): Promise<BackupDownload> {
  const baseUrl = checkBaseUrl(opts.baseUrl);
  const headers: Record<string, string> = { ...userAgent(undefined), accept: 'application/gzip, application/json' };
  // a JWT (it has dots) as a bearer token, an API key as x-api-key: as TaskgateClient sends them
  if (opts.apiKey?.includes('.')) headers.authorization = `Bearer ${opts.apiKey}`;
  else if (opts.apiKey) headers['x-api-key'] = opts.apiKey;
  let res: Response;
  try {
    res = await (opts.fetch ?? globalThis.fetch)(`${baseUrl}/api/v1/admin/backup`, { headers, signal: opts.signal });
  } catch (err) {
    throw new NetworkError({ status: 0, code: 'NETWORK_ERROR', message: `cannot reach ${baseUrl}: ${failureText(err)}`, cause: err });
  }
  if (!res.ok || !res.body) {
    const text = await res.text().catch(() => '');
    const body = errorBodyParts(text);
    throw errorForStatus({
      status: res.status, code: body.code ?? 'BAD_RESPONSE', message: body.message ?? `HTTP ${res.status}`, details: body.details, requestId: body.requestId ?? res.headers.get('x-request-id') ?? undefined,
    });
  }
  const fileName = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1];
  return { body: res.body, fileName };
}
