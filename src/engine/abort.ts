// Why an attempt's AbortSignal fired. The reason decides what the runner writes afterwards.
export type AbortKind = 'cancel' | 'timeout' | 'lease_lost' | 'shutdown' | 'pause' | 'suspend';

export class AttemptAborted extends Error {
  override name = 'AttemptAborted';
  constructor(readonly kind: AbortKind, message: string) {
    super(message);
  }
}

export function abortKindOf(signal: AbortSignal): AbortKind | undefined {
  const r = signal.reason as unknown;
  return r instanceof AttemptAborted ? r.kind : undefined;
}
