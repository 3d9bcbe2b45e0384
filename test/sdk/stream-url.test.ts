// submitAndStream()'s streamUrl against a scripted server behind a path prefix (a proxy serving the
// API under /taskgate/): the server's root-relative stream_url lands under the prefix, as every
// request does.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskgateClient } from '../../src/sdk/index.js';

let server: Server;
let base: string;
const paths: string[] = [];

beforeAll(async () => {
  // answers a submit under any prefix as the real route does: stream_url root-relative
  server = createServer((req, res) => {
    paths.push(req.url!);
    req.resume();
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ task_id: 't1', workflow_id: 't1', session_id: null, stream_url: '/api/v1/stream/sse?workflow_id=t1' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('SDK submitAndStream(): streamUrl', () => {
  it('keeps baseUrl\'s path prefix (and works without one)', async () => {
    const prefixed = await new TaskgateClient({ baseUrl: `${base}/taskgate/` }).submitAndStream({ query: 'hi' });
    expect(paths.at(-1)).toBe('/taskgate/api/v1/tasks/stream');
    expect(prefixed.streamUrl).toBe(`${base}/taskgate/api/v1/stream/sse?workflow_id=t1`);
    expect(prefixed.handle.taskId).toBe('t1');

    const bare = await new TaskgateClient({ baseUrl: base }).submitAndStream({ query: 'hi' });
    expect(bare.streamUrl).toBe(`${base}/api/v1/stream/sse?workflow_id=t1`);
  });
});
