// The agent suites' file fixture: a database, the fake OpenAI server, and a real Taskgate server
// whose provider is that fake (its settings computed from the fake's URL), driven over HTTP.
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { openTestDb, type TestDb } from './db.js';
import { fixtureField, startTestServer, type TestServer } from './server.js';
import { startFakeOpenAi, type FakeOpenAi } from './fake-llm/index.js';

export interface AgentServerFixture {
  readonly tdb: TestDb;
  readonly oai: FakeOpenAi;
  readonly server: TestServer;
  /** Starts a new server with the same settings on the same database (the old one closed first). */
  restartServer(): Promise<TestServer>;
}

/**
 * Registers a beforeAll that opens a database, starts the fake OpenAI server and then a Taskgate
 * server with `env(oai.baseUrl)`; a beforeEach that forgets the fake's script and requests; an
 * afterAll that closes them in reverse.
 */
export function useAgentServer(env: (baseUrl: string) => Record<string, string>): AgentServerFixture {
  let tdb: TestDb | undefined;
  let oai: FakeOpenAi | undefined;
  let server: TestServer | undefined;
  beforeAll(async () => {
    tdb = await openTestDb();
    oai = await startFakeOpenAi();
    server = await startTestServer(tdb.db, env(oai.baseUrl));
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await oai?.stop();
    await tdb?.close();
  });
  beforeEach(() => oai?.reset());
  return {
    get tdb() {
      return fixtureField('useAgentServer', tdb, 'tdb');
    },
    get oai() {
      return fixtureField('useAgentServer', oai, 'oai');
    },
    get server() {
      return fixtureField('useAgentServer', server, 'server');
    },
    async restartServer() {
      const db = fixtureField('useAgentServer', tdb, 'tdb').db;
      await server?.close();
      server = await startTestServer(db, env(fixtureField('useAgentServer', oai, 'oai').baseUrl));
      return server;
    },
  };
}
