// The span boundary: what export() is handed is checked, one span at a time, before anything
// else reads it. Exporters are fed by the SDK (1.x, 2.x, 3.x) but also by bridges, OTLP
// receivers and hand-written code, so a span may lack attributes, times or spanContext(), or
// carry a name, status or resource of the wrong type. One such span must not take its batch
// down with it: it is either normalised (a field the exporter can do without, or can read
// another way) or refused alone, counted as `dropped.malformed` with one message per kind of
// defect, while the rest of the batch goes on.
//
// Cost: a well-formed span (every SDK span) is checked with a handful of `typeof` tests and
// returned as is; only a span that needs fixing is copied into a light stand-in object.
import { SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { quote, type Diagnostics } from './diagnostics.js';
import { LEVEL_ATTRIBUTE } from './mapping/fields.js';
import type { SpanData } from './mapping/transform.js';
import { MAX_TIME_SEC, MIN_TIME_SEC } from './mapping/time.js';

/** Longest trace or span ID accepted: IDs are map keys held in memory and parts of event IDs. */
const MAX_ID_LENGTH = 256;

/** Stands in for a missing or unreadable resource (a WeakMap key: one shared object). */
const EMPTY_RESOURCE: { attributes: Attributes } = Object.freeze({ attributes: Object.freeze({}) as Attributes });
const NO_EVENTS: SpanData['events'] = Object.freeze([]) as unknown as SpanData['events'];
const UNSET_STATUS: SpanData['status'] = Object.freeze({ code: SpanStatusCode.UNSET });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID_LENGTH;

/** A well-formed HrTime within the years the API accepts (0000–9999): [integer s, integer ns < 1e9]. */
function isGoodTime(t: unknown): t is HrTime {
  if (!Array.isArray(t) || t.length < 2) return false;
  const s: unknown = t[0];
  const ns: unknown = t[1];
  return (
    typeof s === 'number' &&
    typeof ns === 'number' &&
    Number.isInteger(s) &&
    Number.isInteger(ns) &&
    ns >= 0 &&
    ns < 1e9 &&
    s >= MIN_TIME_SEC &&
    s <= MAX_TIME_SEC
  );
}

/**
 * A time a hand-made span may carry, as a well-formed HrTime: [s, ns] with fractional seconds
 * or nanoseconds out of range (carried over), or epoch milliseconds as a number. Undefined when
 * it is not a time, or not within years 0000–9999 (the API's RFC3339 range).
 */
export function normalizeTime(t: unknown): HrTime | undefined {
  if (isGoodTime(t)) return t;
  let totalNs: number;
  if (typeof t === 'number') totalNs = t * 1e6;
  else if (Array.isArray(t) && typeof t[0] === 'number' && typeof t[1] === 'number') totalNs = t[0] * 1e9 + t[1];
  else return undefined;
  if (!Number.isFinite(totalNs)) return undefined;
  const s = Math.floor(totalNs / 1e9);
  const ns = Math.min(999_999_999, Math.max(0, Math.round(totalNs - s * 1e9)));
  const out: HrTime = [s, ns];
  return isGoodTime(out) ? out : undefined;
}

type Parent = SpanData['parentSpanContext'];

/** The parent as the store reads it; `null` when the span has a parent field that is unusable. */
function readParent(span: Record<string, unknown>): Parent | null {
  const psc = span.parentSpanContext;
  if (psc !== undefined && psc !== null) {
    if (!isObject(psc)) return null;
    // OTLP and some bridges mark a root with an empty (or all-zero) parent ID.
    if (psc.spanId === '' || psc.spanId === '0000000000000000') return null;
    return isId(psc.spanId) ? (psc as Parent) : null;
  }
  // SDK 1.x names the parent this way.
  const psi = span.parentSpanId;
  if (psi === undefined || psi === null || psi === '' || psi === '0000000000000000') return undefined;
  return isId(psi) ? { spanId: psi } : null;
}

/** Why a span cannot be used. */
export class Refusal {
  constructor(
    /** Stable key for once-per-kind reporting. */
    readonly kind: string,
    /** What is wrong, for the message. */
    readonly what: string,
  ) {}
}

/**
 * The span as the exporter may read it, or why it cannot be used. Never throws for a value
 * that is merely of the wrong shape (a getter that throws is the caller's to catch).
 */
export function checkSpan(raw: unknown): SpanData | Refusal {
  if (!isObject(raw)) return new Refusal('not-object', `the value passed as a span is ${raw === null ? 'null' : typeof raw}, not a span object`);
  if (typeof raw.spanContext !== 'function') return new Refusal('no-span-context', 'it has no spanContext() method');
  const ctx: unknown = (raw.spanContext as () => unknown).call(raw);
  if (!isObject(ctx) || !isId(ctx.traceId) || !isId(ctx.spanId)) {
    return new Refusal('bad-span-context', `spanContext() returned no usable traceId/spanId (non-empty strings of at most ${MAX_ID_LENGTH} characters)`);
  }
  const attributes = raw.attributes;
  if (!isObject(attributes) || Array.isArray(attributes)) {
    return new Refusal('no-attributes', `its attributes are ${attributes === null ? 'null' : Array.isArray(attributes) ? 'an array' : typeof attributes}, not an object`);
  }
  const labelled = (attributes as Attributes)[LEVEL_ATTRIBUTE] !== undefined;

  // The fast path: every field the exporter reads is already of the right shape.
  const parent = readParent(raw);
  const status = raw.status;
  const resource = raw.resource;
  if (
    typeof raw.name === 'string' &&
    isGoodTime(raw.startTime) &&
    isGoodTime(raw.endTime) &&
    parent !== null &&
    isObject(status) &&
    typeof status.code === 'number' &&
    (status.message === undefined || typeof status.message === 'string') &&
    Array.isArray(raw.events) &&
    isObject(resource) &&
    isObject(resource.attributes)
  ) {
    return raw as unknown as SpanData;
  }

  // A labelled span becomes an event: its times must be real. An unlabelled one only links its
  // descendants, so it goes on with its arrival as a stand-in for a time it lacks.
  let startTime = normalizeTime(raw.startTime);
  let endTime = normalizeTime(raw.endTime);
  if (labelled) {
    if (!startTime) return new Refusal('bad-start-time', `its startTime ${quote(raw.startTime, 60)} is not an HrTime [seconds, nanoseconds] within years 0000–9999`);
    if (!endTime) return new Refusal('bad-end-time', `its endTime ${quote(raw.endTime, 60)} is not an HrTime [seconds, nanoseconds] within years 0000–9999 (was the span ended?)`);
  } else if (!startTime || !endTime) {
    const now = normalizeTime(Date.now())!;
    startTime ??= endTime ?? now;
    endTime ??= now;
  }
  const name = typeof raw.name === 'string' ? raw.name : typeof raw.name === 'number' || typeof raw.name === 'boolean' || typeof raw.name === 'bigint' ? String(raw.name) : '';
  let fixedStatus = UNSET_STATUS;
  if (isObject(status)) {
    const code = status.code === SpanStatusCode.ERROR || status.code === SpanStatusCode.OK ? status.code : SpanStatusCode.UNSET;
    fixedStatus = typeof status.message === 'string' ? { code, message: status.message } : { code };
  }
  const traceId = ctx.traceId;
  const spanId = ctx.spanId;
  const context = { traceId, spanId };
  const fixed: SpanData = {
    name,
    spanContext: () => context,
    startTime,
    endTime,
    status: fixedStatus,
    attributes: attributes as Attributes,
    events: Array.isArray(raw.events) ? (raw.events as SpanData['events']) : NO_EVENTS,
    resource: isObject(resource) && isObject(resource.attributes) ? (resource as { attributes: Attributes }) : EMPTY_RESOURCE,
  };
  if (parent) fixed.parentSpanContext = { spanId: parent.spanId, isRemote: parent.isRemote === true };
  return fixed;
}

export function isRefusal(v: SpanData | Refusal): v is Refusal {
  return v instanceof Refusal;
}

/**
 * checkSpan for export(): a refused span is counted (`dropped.malformed`) and reported once per
 * kind of defect. Returns the span to file, or undefined.
 */
export function admitSpan(raw: unknown, diagnostics: Diagnostics): SpanData | undefined {
  const checked = checkSpan(raw);
  if (!isRefusal(checked)) return checked;
  refuse(diagnostics, checked.kind, `${nameOf(raw)} not sent: ${checked.what}. Spans passed to export() must be shaped like the SDK's ReadableSpan (name, spanContext(), startTime/endTime, status, attributes, events, resource); check the code or bridge that builds them.`);
  return undefined;
}

/** Counts one span as malformed and says so once per kind. */
export function refuse(diagnostics: Diagnostics, kind: string, message: string): void {
  diagnostics.drop('malformed', 1, `malformed:${kind}`, `${message} (reported once; see getCounters().dropped.malformed)`);
}

/** How to name a span that may be anything, for a message (never throws). */
export function nameOf(raw: unknown): string {
  try {
    if (!isObject(raw)) return 'a span';
    let ids = '';
    if (typeof raw.spanContext === 'function') {
      const ctx: unknown = (raw.spanContext as () => unknown).call(raw);
      if (isObject(ctx)) ids = ` (trace ${quote(ctx.traceId, 64)}, span ${quote(ctx.spanId, 64)})`;
    }
    return `span ${quote(raw.name, 100)}${ids}`;
  } catch {
    return 'a span';
  }
}
