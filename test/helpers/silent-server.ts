// A TCP server on 127.0.0.1 that accepts every connection and never answers (a proxy whose
// upstream went quiet): for clients' deadlines. The file fixture registers its own hooks.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { fixtureField } from './server.js';

export interface SilentServer {
  readonly server: Server;
  /** http://127.0.0.1:<port> */
  readonly url: string;
}

export function useSilentServer(): SilentServer {
  let server: Server | undefined;
  let url: string | undefined;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    const s = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    server = s;
    url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    const s = server;
    if (s) await new Promise((r) => s.close(r));
  });
  return {
    get server() {
      return fixtureField('useSilentServer', server, 'server');
    },
    get url() {
      return fixtureField('useSilentServer', url, 'url');
    },
  };
}
