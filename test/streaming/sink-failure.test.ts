// A stream whose events cannot be read any more (the database went away mid-stream: the hub's
// read fails) ends so that the client comes back soon and resumes — nothing was lost: SSE sends a
// reconnect hint and no end marker, over a real HTTP response.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { SseSink, STREAM_FAILED_RETRY_MS } from '../../src/api/stream-sinks.js';

it('SSE: a failed stream ends with a retry hint and no done frame; its close reason is aborted', async () => {
  let reason: string | undefined;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const sink = new SseSink(res, 1 << 20);
    sink.onClose(() => (reason = sink.closeReason));
    sink.abort();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const body = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)).text();
    expect(body).toBe(`: stream failed\nretry: ${STREAM_FAILED_RETRY_MS}\n\n`);
    expect(STREAM_FAILED_RETRY_MS).toBe(1000);
    expect(reason).toBe('aborted');
  } finally {
    server.close();
  }
});
