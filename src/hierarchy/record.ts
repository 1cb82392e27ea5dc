// What the store keeps of a span while it waits for its ancestors. An SDK span object is ~1 KB
// beyond its attributes (its processor and limits references, hrtime arrays, duration, span
// context objects, events and links arrays, instrumentation scope) and keeps all of it alive for
// as long as it is held, which can be the whole build. A held span is read later only by the
// mapping (SpanData), the vocabularies (VocabSpan: links too) and the messages (name and IDs),
// so it is held as a record of exactly that, built once, when the store decides to hold it:
// spans resolved on arrival are mapped at once and never copied.
//
// Nothing is deep-copied: the attributes, resource and links are the span's own objects
// (the record only stops the span object itself, and what only it references, from being kept).
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { SpanData } from '../mapping/transform.js';

const EXCEPTION = 'exception';
type SpanEvents = SpanData['events'];
type Links = ReadonlyArray<{ context: { traceId: string; spanId: string }; attributes?: Attributes }>;

interface Rare {
  events: SpanEvents;
  links: Links | undefined;
}

const NO_EVENTS: SpanEvents = Object.freeze([]) as unknown as SpanEvents;
/** One status object per code when there is no message (the SDK allocates one per span). */
const STATUSES: ReadonlyArray<SpanData['status']> = [0, 1, 2].map((code) => Object.freeze({ code }));

/**
 * A held span. One class, every field set in the constructor, so all records share one hidden
 * class with their fields in-object. It is its own span context (spanContext() returns the record,
 * which carries traceId and spanId): no object of its own for that.
 */
export class HeldSpan implements SpanData {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  /** The parent as a string: a held span's parent is always local and known by ID. */
  readonly parentSpanId: string | undefined;
  // The times as four small integers rather than the span's two arrays (64 B each, the seconds
  // are small integers up to 2038): held spans are many, and read once.
  private readonly startS: number;
  private readonly startNs: number;
  private readonly endS: number;
  private readonly endNs: number;
  readonly status: SpanData['status'];
  readonly attributes: Attributes;
  readonly resource: { attributes: Attributes };
  /** Events and links, in one object made only for the few spans that have either. */
  private readonly rare: Rare | undefined;

  constructor(span: SpanData, traceId: string, spanId: string, parentSpanId: string | undefined) {
    this.name = span.name;
    this.traceId = traceId;
    this.spanId = spanId;
    this.parentSpanId = parentSpanId;
    const start = span.startTime;
    const end = span.endTime;
    this.startS = start[0];
    this.startNs = start[1];
    this.endS = end[0];
    this.endNs = end[1];
    const status = span.status;
    this.status = status.message === undefined && (status.code === 0 || status.code === 1 || status.code === 2) ? STATUSES[status.code]! : status;
    this.attributes = span.attributes;
    this.resource = span.resource;
    const events = exceptionOnly(span.events);
    const links = (span as { links?: unknown }).links;
    const someLinks = Array.isArray(links) && links.length > 0;
    this.rare = events !== NO_EVENTS || someLinks ? { events, links: someLinks ? (links as Links) : undefined } : undefined;
  }

  /** Only what the mapping reads: the first exception event, if any. */
  get events(): SpanEvents {
    return this.rare ? this.rare.events : NO_EVENTS;
  }

  /** Read by a vocabulary (a GitHub run attempt's link to the previous one); undefined when none. */
  get links(): Links | undefined {
    return this.rare?.links;
  }

  spanContext(): { traceId: string; spanId: string } {
    return this;
  }

  get startTime(): HrTime {
    return [this.startS, this.startNs];
  }

  get endTime(): HrTime {
    return [this.endS, this.endNs];
  }
}

/** The span's first exception event (what mapping's deriveError looks for), alone; or none. */
function exceptionOnly(events: SpanEvents): SpanEvents {
  if (events.length === 0) return NO_EVENTS;
  const ex = events.find((e) => typeof e === 'object' && e !== null && e.name === EXCEPTION);
  return ex ? [ex] : NO_EVENTS;
}

/**
 * The record to hold for `span`, or the span itself when reading it fails (a hand-made span's
 * getter that throws): such a span is then read, and reported, where it was before, at resolve.
 */
export function holdable(span: SpanData, traceId: string, spanId: string, parentSpanId: string): SpanData {
  try {
    return new HeldSpan(span, traceId, spanId, parentSpanId);
  } catch {
    return span;
  }
}
