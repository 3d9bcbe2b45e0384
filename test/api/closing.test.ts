// A request that reaches a server already shutting down (on a keep-alive connection it still
// serves) gets 503 in the standard error envelope, and the one before it is served normally.
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { ADMIN_KEY, startTestServer, type TestServer } from '../helpers/server.js';

let tdb: TestDb;
let server: TestServer | undefined;

beforeAll(async () => {
  tdb = await openTestDb();
  server = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
});
afterAll(async () => {
  await server?.close();
  await tdb?.close();
});

/** A raw TCP connection to `url`'s server: what it received so far, and when it closed. */
async function rawConnection(url: string) {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  const got = { text: '' };
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (got.text += d));
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, got, ended };
}

it('the answer to a request in flight when the shutdown begins closes its connection', async () => {
  const { socket, got, ended } = await rawConnection(server!.url);
  // the first request's body is still coming when the shutdown starts: the connection is busy,
  // so the server keeps it, and the second request (pipelined behind it) arrives while closing
  const body = JSON.stringify({ task_definition_id: 'noop', input: {} });
  const http = server!.app.server;
  const firstArrived = new Promise((resolve) => http.once('request', resolve));
  socket.write(
    `POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  await firstArrived;
  const closed = server!.close();
  // the shutdown has begun once the server stops listening (its preClose hooks ran before)
  while (http.listening) await new Promise((r) => setTimeout(r, 5));
  socket.write(`${body.slice(5)}GET /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nX-Request-ID: second-one\r\n\r\n`);
  await ended;
  await closed;
  server = undefined;
  const responses = got.text.split(/(?=HTTP\/1\.1 )/);
  // the answer written once the shutdown began closes the connection (RFC 9112 §9.6: the request
  // pipelined behind it is not processed, and the client knows it may send it again elsewhere)
  expect(responses.map((r) => r.slice(0, 12))).toEqual(['HTTP/1.1 200']);
  expect(responses[0]!.split('\r\n\r\n')[0]).toMatch(/\r\nconnection: close\r\n/i);
});

it('a shutdown with a drain answers a keep-alive client 503 and Connection: close instead of resetting its idle connection, and ends once it left', async () => {
  const own = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
  const { socket, got, ended } = await rawConnection(own.url);
  const get = (id: string) => `GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: ${id}\r\n\r\n`;
  socket.write(get('before'));
  while (!got.text.includes('"healthy"')) await new Promise((r) => setTimeout(r, 5));
  // the connection is idle (its request answered) when the shutdown begins: closed at once, the
  // client's next request on it would meet a reset
  const started = Date.now();
  const closed = own.close({ drainMs: 20_000 });
  await new Promise((r) => setTimeout(r, 50));
  socket.write(get('during'));
  await ended;
  await closed;
  // the drain ended when the client left, not after its 20 s
  expect(Date.now() - started).toBeLessThan(10_000);
  const responses = got.text.split(/(?=HTTP\/1\.1 )/);
  expect(responses.map((r) => r.slice(0, 12))).toEqual(['HTTP/1.1 200', 'HTTP/1.1 503']);
  const [head, payload] = responses[1]!.split('\r\n\r\n');
  expect(head).toMatch(/\r\nconnection: close\r\n/i);
  expect(head).toMatch(/\r\nretry-after: 1\r\n/i);
  expect(JSON.parse(payload!)).toMatchObject({ error: { code: 'UNAVAILABLE' }, request_id: 'during' });
});

it('a client still sending its headers when the drain ends is cut after the grace: it cannot hold the shutdown', async () => {
  const own = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api', TASKGATE_SHUTDOWN_GRACE_MS: '200' });
  const { socket, ended } = await rawConnection(own.url);
  socket.on('error', () => {}); // the cut is a reset
  // one header line now and then: Node stops enforcing its header timeout once the server closes
  socket.write('POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\n');
  const dribble = setInterval(() => socket.write('X-Slow: y\r\n'), 100);
  try {
    await own.close({ drainMs: 100 });
    await ended;
  } finally {
    clearInterval(dribble);
    socket.destroy();
  }
  expect(socket.destroyed).toBe(true);
});

it('an answer written after the shutdown began closes its connection', async () => {
  const own = await startTestServer(tdb.db, { TASKGATE_ROLE: 'api' });
  const { socket, got, ended } = await rawConnection(own.url);
  const body = JSON.stringify({ task_definition_id: 'noop', input: {} });
  const http = own.app.server;
  const arrived = new Promise((resolve) => http.once('request', resolve));
  socket.write(
    `POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nX-API-Key: ${ADMIN_KEY}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  await arrived;
  // the request began before the shutdown; its body completes after the drain window
  const closed = own.close({ drainMs: 50 });
  await new Promise((r) => setTimeout(r, 300));
  socket.write(body.slice(5));
  await ended;
  await closed;
  const [head] = got.text.split('\r\n\r\n');
  expect(head).toMatch(/^HTTP\/1\.1 200 /);
  expect(head).toMatch(/\r\nconnection: close\r\n/i);
});
