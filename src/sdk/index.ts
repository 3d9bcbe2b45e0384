// Public SDK surface (`taskgate/sdk`): the HTTP client, task handles, the event-stream reader, the
// errors, and the wire types they speak.
// The runtime modules are these six: index, client, transport, handle, sse, errors — the dashboard
// serves exactly them (DASHBOARD_SDK_FILES, src/api/routes/dashboard.ts), so a new runtime module
// must be added there too (type-only modules such as options.ts and types.ts need not).
export { SDK_VERSION } from './transport.js';
export {
  TaskgateClient, DEFAULT_BASE_URL, TERMINAL_STATUSES,
  type CallOptions, type ClientOptions, type PageOptions, type RequestOptions, type StreamEvent, type StreamOptions, type SubmitOptions,
  type WaitOptions,
} from './client.js';
export { TaskHandle, type Submitted } from './handle.js';
export { SseParser, followEventStream, DEFAULT_STREAM_IDLE_MS, type EventFrame, type SseFrame, type StreamState } from './sse.js';
export {
  TaskgateError, AuthenticationError, PermissionDeniedError, ValidationError, NotFoundError, TaskNotFoundError, SessionNotFoundError,
  ConflictError, RateLimitError, ServerError, NetworkError, RequestTimeoutError, TaskTimeoutError, TaskFailedError, errorForStatus,
  CLIENT_ERROR_CODES, type ClientErrorCode,
} from './errors.js';
export type {
  ApiKeyList, ApiKeyView, CreateApiKeyBody, CreatedApiKey, CreateTenantBody, CreateTenantKeyBody, Me, Scope, TenantList, TenantView,
  UpdateTenantBody,
} from '../contract/auth.js';
export type { ApprovalDecisionBody, ApprovalDecisionResponse, ApprovalList, ApprovalStatus, ApprovalView } from '../contract/approvals.js';
export type { DefinitionBody, DefinitionDetail, DefinitionList, DefinitionSummary } from '../contract/definitions.js';
export type { ErrorCode, ErrorEnvelope } from '../contract/errors.js';
export type { EventType } from '../contract/events.js';
export type { SessionHistory, SessionList, SessionSummary, SessionTitleResponse, SessionTurns, SessionView } from '../contract/sessions.js';
export type {
  ControlResponse, ControlState, ListTasksQuery, SubmitStreamResponse, SubmitTaskBody, SubmitTaskResponse, Usage,
} from '../contract/tasks.js';
export type { EventsResponse, ListTasksResponse, Open, TaskEvent, TaskListItem, TaskStatus, TaskView } from './types.js';
export type { TimelineResponse } from '../contract/timeline.js';
