// The rules that Datadog's spec states only in prose (shared/spec/constraints.md), checked on a
// whole request body. The schema cannot express them, so the intake checks them beside Ajv.

const KEY_VALUE = /^[^:]+:.+$/;
const HOUR_MS = 3_600_000;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

export interface ProseCheck {
  /** Violations: a body with any of these is rejected by the intake. */
  errors: string[];
  /** Things the spec asks for that the real API was seen to accept without (git with neither tag nor branch). */
  notes: string[];
}

export function checkProseRules(body: unknown, now: number = Date.now()): ProseCheck {
  const errors: string[] = [];
  const notes: string[] = [];
  const data = (body as { data?: unknown } | null)?.data;
  if (Array.isArray(data) && data.length > 1000) {
    errors.push(`data has ${data.length} events; the endpoint accepts up to 1000 per request`);
  }
  const events = Array.isArray(data) ? data : data ? [data] : [];
  events.forEach((ev: unknown, i) => {
    const r = (ev as { attributes?: { resource?: Record<string, unknown> } })?.attributes?.resource;
    if (!r || typeof r !== 'object') return;
    const at = Array.isArray(data) ? `/data/${i}/attributes/resource` : '/data/attributes/resource';
    const git = r.git as Record<string, unknown> | null | undefined;
    if (git && typeof git === 'object') {
      const hasTag = git.tag != null;
      const hasBranch = git.branch != null;
      if (hasTag && hasBranch) errors.push(`${at}/git: both tag and branch given; the spec says one, not both`);
      if (!hasTag && !hasBranch) notes.push(`${at}/git: neither tag nor branch given`);
      for (const k of ['author_time', 'commit_time']) {
        if (typeof git[k] === 'string' && !DATE_TIME.test(git[k] as string)) errors.push(`${at}/git/${k}: not RFC3339`);
      }
    }
    for (const k of ['tags', 'metrics'] as const) {
      const list = r[k];
      if (!Array.isArray(list)) continue;
      list.forEach((s: unknown, j) => {
        if (typeof s !== 'string' || !KEY_VALUE.test(s)) errors.push(`${at}/${k}/${j}: not key:value (${JSON.stringify(s)})`);
        else if (k === 'metrics' && !Number.isFinite(Number(s.slice(s.indexOf(':') + 1)))) {
          errors.push(`${at}/metrics/${j}: value is not numeric (${JSON.stringify(s)})`);
        }
      });
    }
    const start = typeof r.start === 'string' ? Date.parse(r.start) : NaN;
    const end = typeof r.end === 'string' ? Date.parse(r.end) : NaN;
    const last = Number.isFinite(end) ? end : start;
    if (Number.isFinite(last) && now - last > 18 * HOUR_MS) {
      errors.push(`${at}: ${Number.isFinite(end) ? 'end' : 'start'} is more than 18 hours in the past`);
    }
    if (Number.isFinite(start) && Number.isFinite(end)) {
      const yearLater = new Date(start);
      yearLater.setUTCFullYear(yearLater.getUTCFullYear() + 1);
      if (end > yearLater.getTime()) errors.push(`${at}: end is more than one year after start`);
    }
  });
  return { errors, notes };
}
