// The package's public surface for embedding Taskgate in another Node program: start a server
// (API and/or workers) from a Config, and the types a task module needs.
export { startServer, type Server, type StartOptions } from './main.js';
export { loadConfig, type Config } from './config/index.js';
export { PermanentError, RetryAfterError } from './executors/types.js';
export type { TaskDefinition, TaskContext, TaskHandler, ExecutionResult, ApprovalDecision, ApprovalRequest, StepOptions } from './executors/types.js';
