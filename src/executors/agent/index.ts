// Public surface of the agent executor for main.ts and the API.
export { createAgentExecutor, type AgentExecutorDeps } from './executor.js';
export type { LoadSessionHistory, RecordSessionUsage, SessionMemory, SessionTurn } from './history.js';
export type { RunChildTask, ChildTaskOptions, DefinitionSummary } from './tools/run-task.js';
export type { HttpFetchOptions } from './tools/http-fetch.js';
export { LlmClient } from './llm-client.js';
