// Where a worker's next claim starts going round the tenants (migration 0010's taskgate_claimable):
// next to the last tenant its previous claim served, in the order that claim went round — down in
// id order from below its own start point, then from the last tenant down to the start point
// (downwards because the claim's index probes read the queue index backwards). Only ties between
// tenants with equally few tasks running are decided so; the counts themselves are read from the
// database and so are shared by every worker process.

/** The round-robin start point of one claimer (a worker; its claim windows). */
export class TenantRotation {
  #after = '';

  /** The tenant the next claim goes round from ('' at first: from the last tenant down). */
  get after(): string {
    return this.#after;
  }

  /** Records the tenants a claim that started from `after` served. */
  served(tenants: Iterable<string>): void {
    const start = this.#after;
    let lastBelow: string | undefined;
    let lastWrapped: string | undefined;
    for (const t of tenants) {
      if (t < start) {
        if (lastBelow === undefined || t < lastBelow) lastBelow = t;
      } else if (lastWrapped === undefined || t < lastWrapped) {
        lastWrapped = t;
      }
    }
    const last = lastWrapped ?? lastBelow;
    if (last !== undefined) this.#after = last;
  }
}
