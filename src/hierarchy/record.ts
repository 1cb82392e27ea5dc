// What the store keeps of a span while it waits for its ancestors. An SDK span object is ~1 KB
// beyond its attributes (its processor and limits references, hrtime arrays, duration, span
// context objects, events and links arrays, instrumentation scope) and keeps all of it alive for
// as long as it is held, which can be the whole build. A held span is read later only by the
// mapping (SpanData), the vocabularies (VocabSpan: links too) and the messages (name and IDs),
// so it is held as a record of exactly that, built once, when the store decides to hold it:
// spans resolved on arrival are mapped at once and never copied.
//
// Two forms, with the same content. While few spans are held (a build whose spans arrive about
// when their pipeline does), a HeldSpan: a class instance the mapping reads as it is; it dies
// young, which is cheap. While many are held (a large build waiting for its pipeline span), a
// HeldRecord: a plain object literal, read through a HeldSpan made at resolve. Held spans then
// live for as long as the build, and each young-generation collection during a burst of filing
// copied, then promoted, every record filed since the one before: 32–48 ms pauses with 100,000
// steps filed at once. V8 tracks each object literal's allocation site and, once it sees that
// what it allocates survives, allocates there in the old generation directly (pretenuring); it
// does not do so for `new` of a class. Made for every held span, records cost the CPU path a few
// per cent (a view per span at resolve), and nodes made the same way ~70 % (pretenured, they die
// old): hence the two forms, chosen by the number of spans held (pending-store.ts).
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
 * A held span as the mapping, the vocabularies and the messages read it (SpanData): a view of its
 * record, made when it is read. One class, every field set in the constructor, so all views share
 * one hidden class. It is its own span context (spanContext() returns the view, which carries
 * traceId and spanId): no object of its own for that.
 */
export class HeldSpan implements SpanData {
  constructor(
    readonly name: string,
    readonly traceId: string,
    readonly spanId: string,
    /** The parent as a string: a held span's parent is always local and known by ID. */
    readonly parentSpanId: string | undefined,
    // The times as four small integers rather than the span's two arrays (64 B each, the seconds
    // are small integers up to 2038): held records are many, and read once.
    private readonly startS: number,
    private readonly startNs: number,
    private readonly endS: number,
    private readonly endNs: number,
    readonly status: SpanData['status'],
    readonly attributes: Attributes,
    readonly resource: { attributes: Attributes },
    /** Events and links, in one object made only for the few spans that have either. */
    private readonly rare: Rare | undefined,
  ) {}

  /** What is kept of `span` (throws when the span cannot be read: a getter that throws). */
  static of(span: SpanData, traceId: string, spanId: string, parentSpanId: string | undefined): HeldSpan {
    const start = span.startTime;
    const end = span.endTime;
    return new HeldSpan(span.name, traceId, spanId, parentSpanId, start[0], start[1], end[0], end[1], statusOf(span), span.attributes, span.resource, rareOf(span));
  }

  /** A record read as a span. */
  static view(r: HeldRecord): HeldSpan {
    return new HeldSpan(r.name, r.traceId, r.spanId, r.parentSpanId, r.startS, r.startNs, r.endS, r.endNs, r.status, r.attributes, r.resource, r.rare);
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

/** What the store holds of a span (see the top of this file): data only, made by one object literal. */
export interface HeldRecord {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly startS: number;
  readonly startNs: number;
  readonly endS: number;
  readonly endNs: number;
  readonly status: SpanData['status'];
  readonly attributes: Attributes;
  readonly resource: { attributes: Attributes };
  readonly rare: Rare | undefined;
}

function statusOf(span: SpanData): SpanData['status'] {
  const status = span.status;
  return status.message === undefined && (status.code === 0 || status.code === 1 || status.code === 2) ? STATUSES[status.code]! : status;
}

function rareOf(span: SpanData): Rare | undefined {
  const events = exceptionOnly(span.events);
  const links = (span as { links?: unknown }).links;
  const someLinks = Array.isArray(links) && links.length > 0;
  return events !== NO_EVENTS || someLinks ? { events, links: someLinks ? (links as Links) : undefined } : undefined;
}

/**
 * What to hold of `span` while few spans are held: a HeldSpan, read as it is (no view to make at
 * resolve). Undefined when reading the span fails (a hand-made span's getter that throws): such a
 * span is then held as it is, and read, and reported, at resolve.
 */
export function holdable(span: SpanData, traceId: string, spanId: string, parentSpanId: string): HeldSpan | undefined {
  try {
    return HeldSpan.of(span, traceId, spanId, parentSpanId);
  } catch {
    return undefined;
  }
}

/**
 * What to hold of `span` while many spans are held (see the top of this file): a HeldRecord, made
 * by one object literal. Undefined when reading the span fails, as for holdable().
 */
export function holdableRecord(span: SpanData, traceId: string, spanId: string, parentSpanId: string): HeldRecord | undefined {
  try {
    const start = span.startTime;
    const end = span.endTime;
    const status = statusOf(span);
    const rare = rareOf(span);
    // Every field, in this order, in the one literal: one hidden class, one allocation site.
    return {
      name: span.name,
      traceId,
      spanId,
      parentSpanId,
      startS: start[0],
      startNs: start[1],
      endS: end[0],
      endNs: end[1],
      status,
      attributes: span.attributes,
      resource: span.resource,
      rare,
    };
  } catch {
    return undefined;
  }
}
