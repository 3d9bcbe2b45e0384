// Where a worker's next claim starts going round the tenants (migration 0010's taskgate_claimable):
// after the last tenant its previous claim served, in the order that claim went round — the
// tenants after its own start point in id order, then from the first one up to it. Only the tie
// between tenants with equally few tasks running is decided so; the counts themselves are read
// from the database and so are shared by every worker process.

/** The round-robin start point of one claimer (a worker; its claim windows). */
export class TenantRotation {
  #after = '';

  /** The tenant the next claim goes round after ('' at first: from the first tenant). */
  get after(): string {
    return this.#after;
  }

  /** Records the tenants a claim that started after `after` served. */
  served(tenants: Iterable<string>): void {
    const start = this.#after;
    let lastAfter: string | undefined;
    let lastWrapped: string | undefined;
    for (const t of tenants) {
      if (t > start) {
        if (lastAfter === undefined || t > lastAfter) lastAfter = t;
      } else if (lastWrapped === undefined || t > lastWrapped) {
        lastWrapped = t;
      }
    }
    const last = lastWrapped ?? lastAfter;
    if (last !== undefined) this.#after = last;
  }
}
