// A submitted task, as the reference gateway's Python SDK hands it back: its ids, and the calls that
// follow it (status, wait, result, stream) and steer it (cancel, pause, resume).
import type { ControlResponse, ControlState } from '../contract/tasks.js';
import type { CallOptions, StreamEvent, StreamOptions, TaskgateClient, WaitOptions } from './client.js';
import { TaskFailedError } from './errors.js';
import type { TaskView } from './types.js';

/** What the submit answered (POST /api/v1/tasks; /tasks/stream answers with stream_url instead of status, message and created_at). */
export interface Submitted {
  task_id: string;
  workflow_id: string;
  session_id: string | null;
  status?: string;
  message?: string;
  created_at?: string;
  stream_url?: string;
}

export class TaskHandle {
  readonly taskId: string;
  readonly workflowId: string;
  readonly sessionId: string | null;
  /** The submit's answer, as received (for `client.task(id)`: the ids only, `session_id` null — unknown until `status()`). */
  readonly submitted: Readonly<Submitted>;
  /**
   * The submit was answered from an earlier one with the same Idempotency-Key (Idempotent-Replayed):
   * `submitted` is that first answer, and the task may have moved on since — ask `status()`.
   */
  readonly replayed: boolean;
  readonly #client: TaskgateClient;

  constructor(client: TaskgateClient, submitted: Submitted, replayed = false) {
    this.#client = client;
    this.submitted = submitted;
    this.replayed = replayed;
    this.taskId = submitted.task_id;
    this.workflowId = submitted.workflow_id;
    this.sessionId = submitted.session_id;
  }

  status(opts?: CallOptions): Promise<TaskView> {
    return this.#client.getStatus(this.taskId, opts);
  }

  /** The task's view once it has ended, whatever the outcome (see TaskgateClient.wait). */
  wait(opts?: WaitOptions): Promise<TaskView> {
    return this.#client.wait(this.taskId, opts);
  }

  /**
   * Waits for the end and gives what the task produced: a definition task's `output`, else the
   * agent's final text (`result`). A task that ended FAILED, CANCELLED or TIMEOUT throws
   * TaskFailedError (its `task` holds the final view, `error` included).
   */
  async result(opts?: WaitOptions): Promise<unknown> {
    const task = await this.wait(opts);
    if (task.status !== 'COMPLETED') throw new TaskFailedError(task);
    return task.output ?? task.result;
  }

  /** The task's events, replayed then live, until its end. */
  stream(opts?: StreamOptions): AsyncGenerator<StreamEvent, void, undefined> {
    return this.#client.stream(this.workflowId, opts);
  }

  cancel(opts?: CallOptions & { reason?: string; force?: boolean }): Promise<ControlResponse> {
    return this.#client.cancel(this.taskId, opts);
  }

  pause(opts?: CallOptions & { reason?: string }): Promise<ControlResponse> {
    return this.#client.pause(this.taskId, opts);
  }

  resume(opts?: CallOptions & { reason?: string }): Promise<ControlResponse> {
    return this.#client.resume(this.taskId, opts);
  }

  controlState(opts?: CallOptions): Promise<ControlState> {
    return this.#client.getControlState(this.taskId, opts);
  }
}
