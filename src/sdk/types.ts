// The wire types as the SDK hands them out: the server's own (src/contract), with the fields that
// hold a documented set of values typed as that set — kept open to a value a newer server adds, so
// an SDK older than its server still compiles and runs. Types only: nothing here exists at runtime.
import type { EventType, TaskEvent as WireTaskEvent } from '../contract/events.js';
import type {
  EventsResponse as WireEventsResponse, ListTasksResponse as WireListTasksResponse, TaskListItem as WireTaskListItem,
  TaskView as WireTaskView,
} from '../contract/tasks.js';

/** One of the known values, or another string (from a newer server); editors still offer the known ones. */
export type Open<T extends string> = T | (string & {});

/** A task's status (docs/state-machine.md). */
export type TaskStatus = 'QUEUED' | 'RUNNING' | 'PAUSED' | 'COMPLETED' | 'FAILED' | 'CANCELLED' | 'TIMEOUT';

export type TaskView = Omit<WireTaskView, 'status'> & { status: Open<TaskStatus> };
export type TaskListItem = Omit<WireTaskListItem, 'status'> & { status: Open<TaskStatus> };
export type ListTasksResponse = Omit<WireListTasksResponse, 'tasks'> & { tasks: TaskListItem[] };
export type TaskEvent = Omit<WireTaskEvent, 'type'> & { type: Open<EventType> };
export type EventsResponse = Omit<WireEventsResponse, 'events'> & { events: TaskEvent[] };

/**
 * A streamed event: the persisted event JSON plus `event`, the SSE name it was sent under; an
 * `LLM_PARTIAL` also carries its text as `delta`, an `LLM_OUTPUT` as `response` (docs/streaming.md).
 */
export type StreamEvent = TaskEvent & { event: string; delta?: string; response?: string };
