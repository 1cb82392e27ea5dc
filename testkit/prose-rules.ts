// The prose-only rules of the spec, as lines of text: the shipped checks (src/intake/prose-rules.ts)
// behind the testkit's older string-based interface.
import { checkProseRules as check } from '../src/intake/prose-rules.js';
import { formatProblem } from '../src/intake/problems.js';
import { eventsOf } from '../src/intake/prose-rules.js';

export interface ProseCheck {
  /** Violations: a body with any of these is rejected by the intake. */
  errors: string[];
  /** Things the spec asks for that the real API was seen to accept without (git with neither tag nor branch). */
  notes: string[];
}

export function checkProseRules(body: unknown, now: number = Date.now()): ProseCheck {
  const events = eventsOf(body);
  const { errors, notes } = check(body, now);
  return { errors: errors.map((p) => formatProblem(p, events)), notes: notes.map((p) => formatProblem(p, events)) };
}
