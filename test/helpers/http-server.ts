// A scripted node:http server on 127.0.0.1 for a test file (what a proxy, an overloaded or a dying
// server can answer on cue): registers its own hooks; `url` is readable once its beforeAll ran.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { fixtureField } from './server.js';

export function useHttpServer(listener: RequestListener): { readonly url: string } {
  const server = createServer(listener);
  let url: string | undefined;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return {
    get url() {
      return fixtureField('useHttpServer', url, 'url');
    },
  };
}
