// The process logger: JSON lines via pino, with credentials redacted wherever they could appear
// (headers, and the api_key/token query parameters SSE clients use).
import pino, { type Logger } from 'pino';
import type { TaskLogger } from './executors/types.js';

const SECRET_QUERY = /([?&](?:api_key|token|access_token)=)[^&#\s]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, '$1[REDACTED]');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'taskgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'headers.authorization',
          'headers["x-api-key"]', '*.authorization', '*.apiKey', '*.api_key', '*.password', '*.token',
        ],
        censor: '[REDACTED]',
      },
      serializers: {
        req: (req: { method?: string; url?: string; id?: string; ip?: string }) => ({ method: req.method, url: req.url ? redactUrl(req.url) : undefined, request_id: req.id, remote: req.ip }),
        err: pino.stdSerializers.err,
      },
    },
    destination,
  );
}

export function taskLogger(log: Logger): TaskLogger {
  return {
    info: (msg, data) => log.info(data ?? {}, msg),
    warn: (msg, data) => log.warn(data ?? {}, msg),
    error: (msg, data) => log.error(data ?? {}, msg),
  };
}
