// One validation problem, and how the intake words it: in a 400 answer each problem names the
// event (its index in `data`, its level and name) and the field (a JSON pointer, and the field's
// path inside the resource), so that a CI engineer can find the span and the attribute.
import { quote } from '../diagnostics.js';

export interface Problem {
  /** Index of the event in the request's `data` (0 for a single object), or null for the request as a whole. */
  event: number | null;
  /** JSON pointer into the request body, e.g. /data/3/attributes/resource/end */
  pointer: string;
  message: string;
}

/** A JSON:API error object, as Datadog answers a 400. `source.pointer` is the field. */
export interface ApiError {
  status: string;
  title: string;
  detail: string;
  source?: { pointer: string };
  meta?: { event: number; level?: string; name?: string };
}

const LEVELS = new Set(['pipeline', 'stage', 'job', 'step']);
const RESOURCE = /^\/data(?:\/\d+)?\/attributes\/resource(?:\/|$)/;

/** The field's path inside the event's resource (`git.sha`, `tags[2]`), or the pointer when outside it. */
export function fieldOf(pointer: string): string {
  if (!RESOURCE.test(pointer)) return pointer || '(body)';
  const rest = pointer.replace(RESOURCE, '');
  if (rest === '') return 'resource';
  return rest
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

/** Level and name of event `i` of `events`, for messages (values through quote()). */
export function describeEvent(events: readonly unknown[], i: number): { label: string; level?: string; name?: string } {
  const r = (events[i] as { attributes?: { resource?: { level?: unknown; name?: unknown } } } | null)?.attributes?.resource;
  const level = typeof r?.level === 'string' ? r.level : undefined;
  const name = typeof r?.name === 'string' ? r.name : undefined;
  const kind = level === undefined ? 'event' : LEVELS.has(level) ? level : `level ${quote(level, 20)}`;
  const what = name !== undefined ? `${kind} ${quote(name, 80)}` : kind;
  return { label: `event ${i} (${what})`, level, name };
}

/** One line per problem: `event 3 (step "compile"): field end (/data/3/attributes/resource/end): must match format "date-time"`. */
export function formatProblem(p: Problem, events: readonly unknown[]): string {
  const where = p.event === null ? 'request' : describeEvent(events, p.event).label;
  return `${where}: field ${fieldOf(p.pointer)} (${p.pointer || '/'}): ${p.message}`;
}

export function toApiError(p: Problem, events: readonly unknown[]): ApiError {
  const out: ApiError = { status: '400', title: 'Bad Request', detail: formatProblem(p, events), source: { pointer: p.pointer } };
  if (p.event !== null) {
    const { level, name } = describeEvent(events, p.event);
    out.meta = { event: p.event, ...(level !== undefined ? { level } : {}), ...(name !== undefined ? { name } : {}) };
  }
  return out;
}
