// Counters and messages. Every message the exporter prints goes through here so that each kind
// of problem is reported once (a build with 100,000 bad steps prints one line, not 100,000), and
// so that nothing secret can leak: messages are built from span data and options, never the key.

/** Why an event (or a span that would have become one) was not delivered. */
export type DropReason =
  /** A required field is missing and no attribute supplied it (e.g. a pipeline or job without url). */
  | 'invalid'
  /** The event ended more than 18 hours ago: Datadog rejects it. */
  | 'too_old'
  /** The pending-span store was full; the oldest held span was dropped. */
  | 'pending_overflow'
  /** A held span waited for its ancestors longer than the age limit. */
  | 'pending_expired'
  /** At shutdown, a span whose ancestors never arrived and that carries no pipeline link of its own. */
  | 'orphaned'
  /** `ci.level` has a value that is not pipeline|stage|job|step. */
  | 'unknown_level'
  /** The send queue was full; the oldest ready event was dropped. */
  | 'queue_overflow'
  /** Datadog answered 400 for this event. */
  | 'rejected'
  /** The event alone is larger than the request byte cap, or Datadog answered 413 for it alone. */
  | 'too_large'
  /** Datadog answered 401/403: the API key or site is wrong. */
  | 'unauthorized'
  /** Retries ran out (deadline) or a non-retryable answer other than the above. */
  | 'delivery_failed'
  /** The exporter was shut down and the event could not be sent nor spooled. */
  | 'shutdown'
  /** The exporter has a configuration error (reported at construction): every span is refused. */
  | 'not_configured'
  /** The object passed to export() is not a usable span (no spanContext(), attributes or times; see span-shape.ts). */
  | 'malformed';

export interface Counters {
  /** Spans passed to export(), labelled or not. */
  spansReceived: number;
  /** Events built, validated and handed to delivery. */
  eventsReady: number;
  /** Events Datadog answered 2xx for. */
  eventsSent: number;
  /** Event sends repeated after a retryable failure (one per event per retry). */
  eventsRetried: number;
  /** HTTP requests made. */
  requests: number;
  /** Problems fixed in place before sending (see the warnings). */
  eventsFixed: number;
  /** Dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** Spans held, waiting for their ancestors. */
  pending: number;
  /** Ready events not yet settled (queued or in flight). */
  queued: number;
  /** Events written to the spool directory. */
  spooled: number;
}

export const DROP_REASONS: readonly DropReason[] = [
  'invalid',
  'too_old',
  'pending_overflow',
  'pending_expired',
  'orphaned',
  'unknown_level',
  'queue_overflow',
  'rejected',
  'too_large',
  'unauthorized',
  'delivery_failed',
  'shutdown',
  'not_configured',
  'malformed',
];

export type Logger = (line: string) => void;

export const PREFIX = '[datadog-ci-pipeline-exporter]';

/** Distinct kinds of message printed at most; past it, problems are only counted. */
const MAX_KINDS = 1000;

export const stderrLogger: Logger = (line) => {
  process.stderr.write(`${PREFIX} ${line}\n`);
};

export class Diagnostics {
  readonly counters: Counters = {
    spansReceived: 0,
    eventsReady: 0,
    eventsSent: 0,
    eventsRetried: 0,
    requests: 0,
    eventsFixed: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    pending: 0,
    queued: 0,
    spooled: 0,
  };
  private readonly said = new Set<string>();

  constructor(private readonly log: Logger = stderrLogger) {}

  /** Print `message` the first time `kind` is reported; later reports only count. */
  once(kind: string, message: string): void {
    if (this.said.has(kind)) return;
    // Kinds can carry user values (an attribute key, a status word): bound what is remembered.
    if (this.said.size >= MAX_KINDS) return;
    this.said.add(kind);
    this.log(message);
  }

  /** Print every time: for problems that are rare by nature (configuration, auth). */
  say(message: string): void {
    this.log(message);
  }

  drop(reason: DropReason, count = 1, kind?: string, message?: string): void {
    this.counters.dropped[reason] += count;
    if (message) this.once(kind ?? `drop:${reason}`, message);
  }

  totalDropped(): number {
    let n = 0;
    for (const r of DROP_REASONS) n += this.counters.dropped[r];
    return n;
  }

  /** A copy, safe to hand to users. */
  snapshot(): Counters {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** One line for shutdown, or undefined when nothing was lost. */
  summary(): string | undefined {
    const total = this.totalDropped();
    if (total === 0) return undefined;
    const parts = DROP_REASONS.filter((r) => this.counters.dropped[r] > 0).map((r) => `${r}=${this.counters.dropped[r]}`);
    const c = this.counters;
    return `dropped ${total} event(s) (${parts.join(', ')}); sent ${c.eventsSent}, spooled ${c.spooled}, spans received ${c.spansReceived}. See getCounters() and the README's "Delivery guarantees".`;
  }
}

/** Longest value put into a message (after escaping). */
export const MAX_QUOTED = 200;

/**
 * A value as it may appear in a message: JSON-quoted (so a newline or a control character
 * cannot forge a log line), clipped to `max` characters with the original length said. Every
 * user-supplied value that goes into a message goes through here.
 */
export function quote(value: unknown, max = MAX_QUOTED): string {
  let s: string;
  if (typeof value === 'string') {
    // Clip before escaping: escaping a 1 MB string to throw most of it away is wasted work.
    const clipped = value.length > max ? value.slice(0, max) : value;
    s = JSON.stringify(clipped);
    if (value.length > max) return `${s.slice(0, max + 1)}…" (${value.length} chars)`;
    return s.length > max + 2 ? `${s.slice(0, max + 1)}…"` : s;
  }
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = Object.prototype.toString.call(value);
  }
  // JSON.stringify escapes strings but not e.g. String(symbol); strip what could break a line.
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  s = s.replace(/[\u0000-\u001f\u2028\u2029]/g, ' ');
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}
