// Status words: CI tools say "failed", "cancelled", "passed"; the API says error, canceled,
// success. Normalised before anything reads the status (error derivation, running events).

const SYNONYMS: Record<string, string> = {
  succeeded: 'success',
  successful: 'success',
  passed: 'success',
  pass: 'success',
  ok: 'success',
  failed: 'error',
  failure: 'error',
  fail: 'error',
  errored: 'error',
  cancelled: 'canceled',
  aborted: 'canceled',
  skip: 'skipped',
  in_progress: 'running',
};

export function normalizeStatus(status: string): string {
  const lower = status.trim().toLowerCase();
  // Own properties only: "constructor" or "__proto__" must not find Object's members.
  return Object.hasOwn(SYNONYMS, lower) ? SYNONYMS[lower]! : lower;
}

/** Levels whose events may be sent while running (no end yet). */
export const RUNNING_LEVELS: ReadonlySet<string> = new Set(['pipeline', 'job']);
