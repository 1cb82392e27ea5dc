// The rules that Datadog's spec states only in prose (constraints.md in the spec folder), checked
// on a whole request body. The schema cannot express them, so the intake checks them beside Ajv.
// Pure: the reference time for the 18-hour rule is a parameter.
import type { Problem } from './problems.js';

const KEY_VALUE = /^[^:]+:.+$/;
const HOUR_MS = 3_600_000;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
/** Operation description: "Multiple events can be sent in an array (up to 1000)." */
export const MAX_EVENTS_PER_REQUEST = 1000;

export interface ProseProblems {
  /** Violations: a body with any of these is rejected (400). */
  errors: Problem[];
  /** What the spec asks for but the real API was seen to accept without (git with neither tag nor branch). */
  notes: Problem[];
}

/** The `data` member as a list of events (the endpoint takes one object or an array). */
export function eventsOf(body: unknown): unknown[] {
  const data = body !== null && typeof body === 'object' ? (body as { data?: unknown }).data : undefined;
  return Array.isArray(data) ? data : data !== undefined && data !== null ? [data] : [];
}

/** JSON pointer of event `i`'s resource, as the schema's error paths spell it. */
export function resourcePointer(body: unknown, i: number): string {
  const data = (body as { data?: unknown } | null)?.data;
  return Array.isArray(data) ? `/data/${i}/attributes/resource` : '/data/attributes/resource';
}

export function checkProseRules(body: unknown, now: number): ProseProblems {
  const errors: Problem[] = [];
  const notes: Problem[] = [];
  const data = (body as { data?: unknown } | null)?.data;
  if (Array.isArray(data) && data.length > MAX_EVENTS_PER_REQUEST) {
    errors.push({
      event: null,
      pointer: '/data',
      message: `data has ${data.length} events; the endpoint accepts up to ${MAX_EVENTS_PER_REQUEST} per request`,
    });
  }
  eventsOf(body).forEach((ev: unknown, i) => {
    const r = (ev as { attributes?: { resource?: unknown } } | null)?.attributes?.resource as Record<string, unknown> | undefined;
    if (!r || typeof r !== 'object') return;
    const at = resourcePointer(body, i);
    const err = (pointer: string, message: string): void => void errors.push({ event: i, pointer, message });
    const git = r.git as Record<string, unknown> | null | undefined;
    if (git && typeof git === 'object') {
      const hasTag = git.tag != null;
      const hasBranch = git.branch != null;
      if (hasTag && hasBranch) err(`${at}/git`, 'both tag and branch given; the spec says one, not both');
      if (!hasTag && !hasBranch) notes.push({ event: i, pointer: `${at}/git`, message: 'neither tag nor branch given' });
      for (const k of ['author_time', 'commit_time']) {
        if (typeof git[k] === 'string' && !DATE_TIME.test(git[k])) err(`${at}/git/${k}`, 'not RFC3339');
      }
    }
    for (const k of ['tags', 'metrics'] as const) {
      const list = r[k];
      if (!Array.isArray(list)) continue;
      list.forEach((s: unknown, j) => {
        if (typeof s !== 'string' || !KEY_VALUE.test(s)) err(`${at}/${k}/${j}`, `not key:value (${JSON.stringify(s)?.slice(0, 120)})`);
        else if (k === 'metrics' && !Number.isFinite(Number(s.slice(s.indexOf(':') + 1)))) {
          err(`${at}/metrics/${j}`, `value is not numeric (${JSON.stringify(s).slice(0, 120)})`);
        }
      });
    }
    const start = typeof r.start === 'string' ? Date.parse(r.start) : NaN;
    const end = typeof r.end === 'string' ? Date.parse(r.end) : NaN;
    const last = Number.isFinite(end) ? end : start;
    if (Number.isFinite(last) && now - last > 18 * HOUR_MS) {
      const field = Number.isFinite(end) ? 'end' : 'start';
      err(`${at}/${field}`, `${field} is more than 18 hours in the past`);
    }
    if (Number.isFinite(start) && Number.isFinite(end)) {
      const yearLater = new Date(start);
      yearLater.setUTCFullYear(yearLater.getUTCFullYear() + 1);
      if (end > yearLater.getTime()) err(`${at}/end`, 'end is more than one year after start');
    }
  });
  return { errors, notes };
}
