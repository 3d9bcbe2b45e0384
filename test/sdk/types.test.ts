// The SDK's public types (checked by `tsc --noEmit -p .`; at runtime these assertions are no-ops):
// statuses and event types are the documented unions, still open to a value a newer server adds,
// and the SDK's status union is the domain's.
import { expectTypeOf, it } from 'vitest';
import type { EventType } from '../../src/contract/events.js';
import type { TaskStatus as DomainTaskStatus } from '../../src/domain/lifecycle.js';
import type { EventsResponse, ListTasksResponse, StreamEvent, TaskEvent, TaskListItem, TaskStatus, TaskView } from '../../src/sdk/index.js';

it('TaskView.status and TaskEvent.type are the documented unions, open-ended', () => {
  expectTypeOf<TaskStatus>().toEqualTypeOf<DomainTaskStatus>();
  for (const status of [null as unknown as TaskView['status'], null as unknown as TaskListItem['status'], null as unknown as ListTasksResponse['tasks'][number]['status']]) {
    expectTypeOf(status).not.toEqualTypeOf<string>();
    expectTypeOf<TaskStatus>().toMatchTypeOf(status);
    expectTypeOf<'STATUS_OF_A_NEWER_SERVER'>().toMatchTypeOf(status);
  }
  for (const type of [null as unknown as TaskEvent['type'], null as unknown as StreamEvent['type'], null as unknown as EventsResponse['events'][number]['type']]) {
    expectTypeOf(type).not.toEqualTypeOf<string>();
    expectTypeOf<EventType>().toMatchTypeOf(type);
    expectTypeOf<'EVENT_OF_A_NEWER_SERVER'>().toMatchTypeOf(type);
  }
  expectTypeOf<StreamEvent['delta']>().toEqualTypeOf<string | undefined>();
  expectTypeOf<StreamEvent['response']>().toEqualTypeOf<string | undefined>();
});
