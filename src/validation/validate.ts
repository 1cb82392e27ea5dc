// Checks one event against the API's rules before it is sent: the schema's required fields, enums
// and limits, and the prose rules of constraints.md. What can be fixed is fixed in place and
// reported (once per kind, by the caller); what cannot makes the event undeliverable, with a
// message that names the span, the field and the attribute that supplies it.
import { quote } from '../diagnostics.js';
import { normalizeStatus } from '../mapping/status.js';
import type { SharedFields } from '../mapping/shared.js';
import type { Resource } from '../mapping/transform.js';

export interface Finding {
  /** Stable key for once-per-kind reporting, e.g. "fix:step-status". */
  kind: string;
  message: string;
}

export type Verdict =
  | { ok: true; fixes: Finding[] }
  | { ok: false; reason: 'invalid' | 'too_old' | 'orphaned'; problem: Finding; fixes: Finding[] };

export const MAX_EVENT_AGE_MS = 18 * 3_600_000;
const ERROR_MESSAGE_MAX = 5000;
const ERROR_TYPE_MAX = 100;
const SHA = /^[a-fA-F0-9]{40}$/;
const KEY_VALUE = /^[^:]+:.+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

const LIST_FIELDS = ['tags', 'metrics'] as const;
const LINK_FIELDS = ['parent_pipeline', 'previous_attempt'] as const;
/**
 * A metric's value: a decimal number as JSON and Datadog read it. Number() alone would take
 * " " (as 0) or "0x10" (as 16); the pattern has no nested quantifiers, so it runs in
 * linear time on any input.
 */
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const isTag = (s: string): boolean => KEY_VALUE.test(s);
const isMetric = (s: string): boolean => {
  if (!KEY_VALUE.test(s)) return false;
  const value = s.slice(s.indexOf(':') + 1);
  return NUMBER.test(value) && Number.isFinite(Number(value));
};
/** Bad entries named in a message at most: the counters keep the totals. */
const LIST_SHOWN = 5;
/** A fix made to a git object, as its message will say it. */
interface GitFix {
  kind: string;
  message: string;
}
/**
 * Git objects already checked: whether they are sent, and what was fixed in them (each later
 * event that carries the same object, a pipeline's descendants or a resource's spans, was sent
 * after those fixes too, and is counted so; the messages are said once anyway).
 */
const checkedGit = new WeakMap<object, { sent: boolean; fixes: readonly GitFix[] }>();
/** The usual case, no fix to a git: one empty list, not one per event. */
const NO_GIT_FIXES: readonly GitFix[] = Object.freeze([]);
/** Shared objects whose git was left out, and why: their later events were sent after that fix. */
const strippedGit = new WeakMap<object, readonly GitFix[]>();

function yearAfter(ms: number): number {
  const d = new Date(ms);
  d.setUTCFullYear(d.getUTCFullYear() + 1);
  return d.getTime();
}

const STATUSES = {
  pipeline: ['success', 'error', 'canceled', 'skipped', 'blocked', 'running'],
  stage: ['success', 'error', 'canceled', 'skipped'],
  job: ['success', 'error', 'canceled', 'skipped', 'running'],
  step: ['success', 'error'],
} as const;

// A span whose pipeline never arrived: with this project's attributes or another tool's (a Jenkins
// build, a GitHub run), the fix is the same, the trace's pipeline span must reach the exporter.
const NO_PIPELINE =
  'or make sure its pipeline span reaches the exporter (a span with ci.level=pipeline, or the root span of a recognised CI tool: a Jenkins build, a GitHub or GitLab run); if it ended long before this span, raise maxRememberedSpans';

/** Required by the schema beyond what the mapping always sets (level, name, status, start). */
const REQUIRED: Record<Resource['level'], Array<[field: string, attribute: string, hint: string]>> = {
  pipeline: [['url', 'ci.url', 'the link to this build in your CI system']],
  stage: [
    ['pipeline_unique_id', 'ci.pipeline_unique_id', NO_PIPELINE],
    ['pipeline_name', 'ci.pipeline_name', NO_PIPELINE],
  ],
  job: [
    ['url', 'ci.url', 'the link to this job in your CI system'],
    ['pipeline_unique_id', 'ci.pipeline_unique_id', NO_PIPELINE],
    ['pipeline_name', 'ci.pipeline_name', NO_PIPELINE],
  ],
  step: [
    ['pipeline_unique_id', 'ci.pipeline_unique_id', NO_PIPELINE],
    ['pipeline_name', 'ci.pipeline_name', NO_PIPELINE],
  ],
};

/** Most events need no fix: they all share this verdict and its empty list (never mutated). */
const NO_FIXES: Finding[] = Object.freeze([]) as unknown as Finding[];
const OK: Verdict = Object.freeze({ ok: true, fixes: NO_FIXES });

/** A span's name in messages; a function so that it is only built for the rare message. */
export type What = string | (() => string);

const named = (what: What): string => (typeof what === 'string' ? what : what());

/** Removes an unsendable git from the event (or from what it shares with its siblings: from them all). */
function leaveOut(holder: { git?: unknown }, shared: object | undefined, why: readonly GitFix[]): void {
  delete holder.git;
  if (holder === shared) strippedGit.set(shared, why);
}

/** `fixes` plus one: a new list when it was the shared empty one. */
function withFix(fixes: Finding[], what: What, kind: string, message: string): Finding[] {
  const list = fixes === NO_FIXES ? [] : fixes;
  list.push({ kind, message: `${named(what)}: ${message}` });
  return list;
}

/**
 * @param r the resource, fixed in place
 * @param times the event's end (or start when running) and start, epoch ms
 * @param what how to name the span in messages, e.g. `job "build" (trace …, span …)`
 * @param fallbackStatus what an unusable ci.status becomes: the span status's success/error
 * @param shared the fields the event shares with its siblings, when kept apart from `r` (see
 *   mapSpanParts); read for the required links, and its git is checked like `r`'s own
 */
export function validateEvent(
  r: Resource,
  times: { timeMs: number; startMs: number },
  what: What,
  now: number,
  fallbackStatus: 'success' | 'error' = 'success',
  maxAgeMs = MAX_EVENT_AGE_MS,
  shared?: SharedFields,
): Verdict {
  const { timeMs, startMs } = times;
  // No list and no closure until the first fix: this runs once per event, and most need none.
  let fixes = NO_FIXES;
  const level = r.level;

  // Status: synonyms, then the level's enum; anything else falls back to success/error.
  const allowed = STATUSES[level] as readonly string[];
  if (!allowed.includes(r.status)) {
    const original = r.status;
    const synonym = normalizeStatus(original);
    const lower = original.toLowerCase();
    if (allowed.includes(synonym)) {
      r.status = synonym;
    } else {
      if (synonym === 'canceled' || synonym === 'blocked') r.status = allowed.includes('canceled') ? 'canceled' : 'error';
      else if (synonym === 'skipped') r.status = 'success';
      else r.status = fallbackStatus;
      fixes = withFix(
        fixes,
        what,
        `fix:status:${level}:${lower.slice(0, 64)}`,
        `ci.status ${quote(original)} is not a ${level} status (allowed: ${allowed.join(', ')}); sent as "${r.status}"`,
      );
    }
  }

  // Required fields the attributes must supply.
  for (const [field, attribute, hint] of REQUIRED[level]) {
    const value = r[field] ?? shared?.[field as keyof SharedFields];
    if (typeof value !== 'string' || value === '') {
      return {
        ok: false,
        // A missing pipeline link means the span's pipeline never arrived (or does not exist).
        reason: field.startsWith('pipeline_') ? 'orphaned' : 'invalid',
        problem: {
          kind: `drop:missing:${level}:${field}`,
          message: `${named(what)} not sent: field "${field}" is required for a ${level} event; set attribute ${attribute} (${hint}).`,
        },
        fixes,
      };
    }
  }
  if (r.name === '') {
    return {
      ok: false,
      reason: 'invalid',
      problem: { kind: `drop:missing:${level}:name`, message: `${named(what)} not sent: the name is empty; set attribute ci.name or name the span.` },
      fixes,
    };
  }

  // Age and duration: the API rejects events older than 18 hours and runs longer than a year.
  if (now - timeMs > maxAgeMs) {
    return {
      ok: false,
      reason: 'too_old',
      problem: {
        kind: `drop:too_old`,
        message: `${named(what)} not sent: it ended ${new Date(timeMs).toISOString()}, more than ${Math.round(maxAgeMs / 3_600_000)} hours ago; Datadog rejects older events.`,
      },
      fixes,
    };
  }
  if (r.end !== undefined) {
    // 365 days is never more than a calendar year: only longer runs need the exact check.
    if (timeMs - startMs > 365 * 86_400_000 && timeMs > yearAfter(startMs)) {
      return {
        ok: false,
        reason: 'invalid',
        problem: { kind: 'drop:duration', message: `${named(what)} not sent: it lasts more than one year (start ${String(r.start)}, end ${String(r.end)}); check ci.start/ci.end.` },
        fixes,
      };
    }
    if (timeMs < startMs) {
      r.end = r.start;
      fixes = withFix(fixes, what, 'fix:end-before-start', `end is before start; sent with end = start (check ci.start/ci.end)`);
    }
  }

  // Error object limits and enum.
  const error = r.error as Record<string, unknown> | undefined;
  if (error) {
    if (typeof error.message === 'string' && error.message.length > ERROR_MESSAGE_MAX) {
      error.message = `${error.message.slice(0, ERROR_MESSAGE_MAX - 3)}...`;
      fixes = withFix(fixes, what, 'fix:error-message-length', `error message longer than ${ERROR_MESSAGE_MAX} characters; truncated`);
    }
    if (typeof error.type === 'string' && error.type.length > ERROR_TYPE_MAX) {
      error.type = `${error.type.slice(0, ERROR_TYPE_MAX - 3)}...`;
      fixes = withFix(fixes, what, 'fix:error-type-length', `error type longer than ${ERROR_TYPE_MAX} characters; truncated`);
    }
    if (error.domain !== undefined && error.domain !== 'provider' && error.domain !== 'user' && error.domain !== 'unknown') {
      fixes = withFix(fixes, what, 'fix:error-domain', `ci.error.domain ${quote(error.domain)} is not provider, user or unknown; sent as unknown`);
      error.domain = 'unknown';
    }
  }

  // Tags and metrics: key:value, numeric metric values.
  // One pass each (100,000 entries must not take quadratic time), and a message that names a
  // few of the bad entries, clipped, never all of them.
  for (const field of LIST_FIELDS) {
    const list = r[field] as string[] | undefined;
    if (!list) continue;
    const ok = field === 'tags' ? isTag : isMetric;
    let first = 0;
    while (first < list.length && ok(list[first]!)) first++;
    if (first === list.length) continue;
    // Each entry is tested once: the good prefix is kept as is, the rest sorted as it goes.
    const kept = list.slice(0, first);
    const shown: string[] = [];
    let bad = 0;
    for (let i = first; i < list.length; i++) {
      const s = list[i]!;
      if (ok(s)) kept.push(s);
      else if (++bad <= LIST_SHOWN) shown.push(quote(s, 60));
    }
    fixes = withFix(
      fixes,
      what,
      `fix:${field}`,
      `ci.${field} entries must be "key:value"${field === 'metrics' ? ' with a numeric value' : ''}; left out ${bad} of ${list.length}: ${shown.join(', ')}${bad > shown.length ? ', …' : ''}`,
    );
    r[field] = kept;
  }

  // Git: required fields, sha shape, tag xor branch, RFC3339 times. It is the event's own, or
  // its ancestors' in `shared`; left out of whichever holds it. A shared object is its siblings'
  // too: they all get the same verdict on the same git, so leaving it out there is right for all.
  const holder = (r.git !== undefined ? r : shared) as { git?: unknown } | undefined;
  const git = holder?.git as Record<string, string> | undefined;
  // Descendants share their pipeline's git object, a resource's spans its git: check it once.
  const known = git && checkedGit.get(git);
  const stripped = git === undefined && shared !== undefined ? strippedGit.get(shared) : undefined;
  // What was fixed in this event's git (now, or when the object was first checked).
  let gitFixes = NO_GIT_FIXES;
  if (stripped !== undefined) {
    gitFixes = stripped;
  } else if (known !== undefined) {
    gitFixes = known.fixes;
    if (!known.sent) leaveOut(holder!, shared, known.fixes);
  } else if (git) {
    let sent = false;
    const found: GitFix[] = [];
    const fix = (kind: string, message: string): number => found.push({ kind, message });
    const missing = (['repository_url', 'sha', 'author_email'] as const).filter((k) => !git[k]);
    if (missing.length > 0) {
      fix(
        `fix:git-missing:${missing.join(',')}`,
        `git info left out: Datadog needs ${missing.map((m) => `ci.git.${m}`).join(', ')} with it; set ${missing.length > 1 ? 'them' : 'it'} to send git info`,
      );
    } else if (!SHA.test(git.sha!)) {
      fix('fix:git-sha', `git info left out: ci.git.sha ${quote(git.sha)} is not a 40-hex-digit commit SHA`);
    } else {
      sent = true;
      if (git.tag !== undefined && git.branch !== undefined) {
        delete git.branch;
        fix('fix:git-tag-and-branch', `both ci.git.tag and ci.git.branch are set; Datadog takes one: sent the tag only`);
      }
      for (const k of ['author_time', 'commit_time'] as const) {
        if (git[k] !== undefined && !RFC3339.test(git[k])) {
          const ms = Date.parse(git[k]);
          if (Number.isFinite(ms)) git[k] = new Date(ms).toISOString();
          else delete git[k];
          fix(`fix:git-${k}`, `ci.git.${k} is not an RFC3339 time; ${Number.isFinite(ms) ? 'converted' : 'left out'}`);
        }
      }
    }
    checkedGit.set(git, { sent, fixes: found });
    gitFixes = found;
    if (!sent) leaveOut(holder!, shared, found);
  }
  for (const f of gitFixes) fixes = withFix(fixes, what, f.kind, f.message);

  // Links that need an id.
  if (level === 'pipeline') for (const link of LINK_FIELDS) {
    const v = r[link] as Record<string, unknown> | undefined;
    if (v && typeof v.id !== 'string') {
      delete r[link];
      fixes = withFix(fixes, what, `fix:${link}`, `${link} left out: set ci.${link}.id (a pipeline UUID) along with ci.${link}.url`);
    }
  }
  return fixes === NO_FIXES ? OK : { ok: true, fixes };
}
