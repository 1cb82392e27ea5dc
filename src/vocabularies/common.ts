// Helpers every vocabulary uses: reading attributes (span first, then resource), the status
// table of all producers, the level rules the API imposes on statuses, and git: complete git
// (repository URL, 40-hex SHA, author e-mail: what the API requires together) goes into `git`,
// anything less into `tags` under Datadog's own names, so nothing is lost.
import { SpanStatusCode, type AttributeValue, type HrTime } from '@opentelemetry/api';
import type { Level } from '../mapping/fields.js';
import type { CiValues, VocabSpan } from './types.js';

/** A non-empty string from a string or number attribute. */
export function str(v: AttributeValue | undefined | null): string | undefined {
  if (typeof v === 'string') return v.trim() === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Span attribute, else resource attribute, as a non-empty string. */
export function either(span: VocabSpan, key: string): string | undefined {
  return str(span.attributes[key]) ?? str(span.resource.attributes[key]);
}

export function res(span: VocabSpan, key: string): string | undefined {
  return str(span.resource.attributes[key]);
}

export function own(span: VocabSpan, key: string): string | undefined {
  return str(span.attributes[key]);
}

/** A string list from a string[] attribute or a separated string. */
export function list(v: AttributeValue | undefined | null, sep: RegExp = /\s*,\s*/): string[] | undefined {
  let out: string[] | undefined;
  if (Array.isArray(v)) out = v.filter((x) => x !== null && x !== undefined && String(x).trim() !== '').map((x) => String(x).trim());
  else if (typeof v === 'string') out = v.split(sep).map((s) => s.trim()).filter((s) => s !== '');
  return out && out.length > 0 ? out : undefined;
}

export type Status = 'success' | 'error' | 'canceled' | 'skipped';

/** Every producer's result words (research section 0); case-insensitive. Unknown words: undefined. */
const RESULTS: Record<string, Status> = {
  success: 'success',
  neutral: 'success',
  failure: 'error',
  failed: 'error',
  error: 'error',
  timeout: 'error',
  timed_out: 'error',
  startup_failure: 'error',
  action_required: 'error',
  stale: 'error',
  unstable: 'error',
  cancellation: 'canceled',
  cancelled: 'canceled',
  canceled: 'canceled',
  aborted: 'canceled',
  skip: 'skipped',
  skipped: 'skipped',
  not_built: 'skipped',
  not_executed: 'skipped',
};

/** RESULTS under the words as producers write them (Jenkins: SUCCESS), looked up before any trim/lowercase copy. */
const RESULTS_AS_WRITTEN = new Map<string, Status>();
for (const [word, status] of Object.entries(RESULTS)) {
  RESULTS_AS_WRITTEN.set(word, status);
  RESULTS_AS_WRITTEN.set(word.toUpperCase(), status);
}

export function resultStatus(raw: string | undefined): Status | undefined {
  if (raw === undefined) return undefined;
  // A Map, not the object: a result word such as `constructor` must not find Object's own.
  return RESULTS_AS_WRITTEN.get(raw) ?? RESULTS_AS_WRITTEN.get(raw.trim().toLowerCase());
}

/** The span status as the last resort (the result attribute wins when there is one). */
export function spanStatus(span: VocabSpan): Status {
  return span.status.code === SpanStatusCode.ERROR ? 'error' : 'success';
}

/**
 * Writes `ci.status` for `level`. A step may only be success or error: canceled → error,
 * skipped → success, each with a `ci.step.result:<word>` tag so the difference is not lost.
 */
export function putStatus(out: CiValues, tags: string[], level: Level, status: Status | undefined): Status | undefined {
  if (status === undefined) return undefined;
  if (level === 'step' && (status === 'canceled' || status === 'skipped')) {
    tags.push(`ci.step.result:${status}`);
    out['ci.status'] = status === 'canceled' ? 'error' : 'success';
    return status;
  }
  out['ci.status'] = status;
  return status;
}

export function put(out: CiValues, key: string, value: AttributeValue | undefined): void {
  if (value !== undefined) out[key] = value;
}

/** A duration in ms the API takes (a non-negative safe integer), or undefined. */
export function msValue(v: number): number | undefined {
  const n = Math.round(v);
  return Number.isFinite(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER ? n : undefined;
}

export function hrMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

export function durationMs(span: { startTime: HrTime; endTime: HrTime }): number {
  return Math.max(0, Math.round(hrMs(span.endTime) - hrMs(span.startTime)));
}

export interface GitFacts {
  repository_url?: string | undefined;
  sha?: string | undefined;
  branch?: string | undefined;
  tag?: string | undefined;
  author_email?: string | undefined;
  author_name?: string | undefined;
  author_time?: string | undefined;
  commit_time?: string | undefined;
  message?: string | undefined;
}

const SHA = /^[0-9a-f]{40}$/i;

/**
 * Complete git (repository URL, 40-hex SHA, author e-mail) → `ci.git.*`; otherwise what is
 * known → tags under Datadog's names (`git.repository_url`, `git.commit.sha`, `git.branch`,
 * `git.tag`). A tag wins over a branch (the API takes one).
 */
export function putGit(out: CiValues, tags: string[], g: GitFacts): void {
  const ref = g.tag !== undefined ? { tag: g.tag } : g.branch !== undefined ? { branch: g.branch } : {};
  if (g.repository_url && g.sha && SHA.test(g.sha) && g.author_email) {
    out['ci.git.repository_url'] = g.repository_url;
    out['ci.git.sha'] = g.sha.toLowerCase();
    out['ci.git.author_email'] = g.author_email;
    put(out, 'ci.git.branch', ref.branch);
    put(out, 'ci.git.tag', ref.tag);
    put(out, 'ci.git.author_name', g.author_name);
    put(out, 'ci.git.author_time', rfc3339(g.author_time));
    put(out, 'ci.git.commit_time', rfc3339(g.commit_time));
    put(out, 'ci.git.message', g.message);
    return;
  }
  if (g.repository_url) tags.push(`git.repository_url:${g.repository_url}`);
  if (g.sha) tags.push(`git.commit.sha:${g.sha}`);
  if (ref.branch !== undefined) tags.push(`git.branch:${ref.branch}`);
  if (ref.tag !== undefined) tags.push(`git.tag:${ref.tag}`);
}

/** "2026-05-01 10:00:00 UTC" and other Date.parse-able forms → RFC3339; unparseable: left out. */
export function rfc3339(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const ms = Date.parse(v.replace(/ UTC$/, 'Z').replace(/^(\d{4}-\d\d-\d\d) /, '$1T'));
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/** semconv `vcs.*` keys (span, then resource), with the deprecated and the GitHub receiver's variants. */
export function vcsGit(span: VocabSpan): GitFacts {
  const name = either(span, 'vcs.ref.head.name') ?? either(span, 'vcs.repository.ref.name') ?? either(span, 'vcs.ref.head');
  const type = either(span, 'vcs.ref.head.type') ?? either(span, 'vcs.ref.type') ?? either(span, 'vcs.repository.ref.type');
  return {
    repository_url: either(span, 'vcs.repository.url.full'),
    sha: either(span, 'vcs.ref.head.revision') ?? either(span, 'vcs.repository.ref.revision'),
    branch: name !== undefined && type !== 'tag' ? name : undefined,
    tag: name !== undefined && type === 'tag' ? name : undefined,
    author_email: either(span, 'vcs.ref.head.revision.author.email'),
    author_name: either(span, 'vcs.ref.head.revision.author.name'),
    message: either(span, 'vcs.ref.head.revision.message'),
    commit_time: either(span, 'vcs.ref.head.revision.timestamp'),
  };
}

/** Tags are kept apart while a decision is built, and written once. */
export function putTags(out: CiValues, tags: string[]): void {
  // Values come from producers' attributes: an empty one would make a `key:` tag, which the API refuses.
  let ok = true;
  for (const t of tags) {
    const i = t.indexOf(':');
    if (i <= 0 || i === t.length - 1) ok = false;
  }
  const clean = ok ? tags : tags.filter((t) => t.indexOf(':') > 0 && t.indexOf(':') < t.length - 1);
  if (clean.length > 0) out['ci.tags'] = clean;
}

/** `error.type` on the span; the domain from the result word (semconv: `error` = the CI system failed). */
export function putError(out: CiValues, status: Status | undefined, type: string | undefined, domain: string): void {
  if (status !== 'error') return;
  put(out, 'ci.error.type', type);
  out['ci.error.domain'] = domain;
}

/** `https://github.com/acme/app/actions/runs/1` → `https://github.com/acme/app` (as Datadog's GitHub tooling builds it). */
export function repositoryFromRunUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const i = url.indexOf('/actions/');
  return i > 0 ? url.slice(0, i) : undefined;
}
