// Which tenants have a cap on their running tasks, as one worker knows it: their submits are not
// dispatched directly (the claim counts a tenant's running tasks; a direct dispatch would not),
// and one of their tasks ending wakes a claim. Read at start, on a tenant-change hint and every
// few polls; the caps themselves stay in the database (tenants.max_running).

/** One worker's view of the capped tenants. */
export class CappedTenants {
  #ids = new Set<string>();
  #known = false;
  #stale = false;
  #reading: Promise<void> | undefined;
  #failing = false;

  /**
   * `read` returns the ids of the tenants with a cap; `onFirstFailure` hears of a failed read once
   * per run of failures (every poll would say it again).
   */
  constructor(
    private readonly read: () => Promise<readonly string[]>,
    private readonly onFirstFailure: (err: unknown) => void,
  ) {}

  /**
   * Whether a tenant's submits may be dispatched directly: not before the first read, not a capped
   * tenant's, and not one signalled as changed until a read begun after the signal says otherwise
   * (so no submit goes past a cap set a moment ago).
   */
  allowsDirect(tenantId: string): boolean {
    return this.#known && !this.#ids.has(tenantId);
  }

  /** Whether the tenant counts as capped now (a signalled one does). */
  has(tenantId: string): boolean {
    return this.#ids.has(tenantId);
  }

  /** A tenant changed (its cap among what may have): capped from now until the read this starts. */
  changed(tenantId: string): void {
    this.#ids.add(tenantId);
    void this.refresh();
  }

  /** Reads the caps again: one read at a time, and a change signalled during a read makes another. */
  refresh(): Promise<void> {
    this.#stale = true;
    return (this.#reading ??= this.#readWhileStale().finally(() => (this.#reading = undefined)));
  }

  async #readWhileStale(): Promise<void> {
    while (this.#stale) {
      this.#stale = false;
      try {
        const ids = await this.read();
        // a tenant signalled during the read may have changed after it: keep it capped, read again
        if (!this.#stale) {
          this.#ids = new Set(ids);
          this.#known = true;
        }
        this.#failing = false;
      } catch (err) {
        // a tenant signalled meanwhile stays capped until a read succeeds: the safe side
        if (!this.#failing) this.onFirstFailure(err);
        this.#failing = true;
        return;
      }
    }
  }
}
