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

/**
 * Where messages go, one line each. It may throw or return a rejecting promise: Diagnostics
 * catches both and falls back to stderr (a broken logger must not break the build).
 */
export type Logger = (line: string) => void;

export const PREFIX = '[datadog-ci-pipeline-exporter]';

/** Distinct kinds of message printed at most; past it, problems are only counted. */
const MAX_KINDS = 1000;
/** Longest kind kept as it is; a longer one is remembered by its length, head and tail. */
const MAX_KIND_CHARS = 160;
/** Longest line handed to the logger (after escaping); the rest is cut, and the cut said. */
export const MAX_LINE = 2000;
/** Stands for the API key wherever it would have appeared in a message. */
export const REDACTED = '[API key redacted]';

/** Writes to stderr; never throws (a closed stderr must not break the build either). */
export const stderrLogger: Logger = (line) => {
  try {
    process.stderr.write(`${PREFIX} ${line}\n`);
  } catch {
    // nowhere left to say it
  }
};

/**
 * Characters that could end a line or forge one on a terminal or in a CI log viewer: C0 and C1
 * controls (newline, carriage return, ESC of colour codes), DEL, the Unicode line and paragraph
 * separators, and the bidirectional overrides that reorder what a reader sees.
 */
// eslint-disable-next-line no-control-regex -- control characters are what is being escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeChar(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * One message as one safe line: control characters escaped (a value containing a newline
 * cannot forge a `[datadog-ci-pipeline-exporter] …` line), at most MAX_LINE characters.
 * Linear in the message; a huge message is cut before it is escaped.
 */
export function safeLine(message: string): string {
  const total = message.length;
  // Escaping at most multiplies by 6: cut first so that a 1 MB message costs what 2 KB do.
  const head = total > MAX_LINE ? message.slice(0, MAX_LINE) : message;
  let line = head.replace(UNSAFE, escapeChar);
  if (line.length > MAX_LINE || total > MAX_LINE) {
    // Never cut inside an escape sequence or a surrogate pair.
    let cut = Math.min(line.length, MAX_LINE - 40);
    const esc = line.lastIndexOf('\\', cut);
    if (esc >= 0 && cut - esc < 6) cut = esc;
    const code = line.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut--;
    line = `${line.slice(0, cut)}… (line cut, ${total} chars)`;
  }
  return line;
}

function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  } catch {
    return 'an unprintable value';
  }
}

/** A copy that shares no memory with `s` (V8 slices keep their whole parent string alive). */
function detached(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * The key under which a kind is remembered: the kind itself when short, else its length, head
 * and tail. Kinds embed user values (an attribute key, a status word); a 1 MB kind must not keep
 * 1 MB alive. Two long kinds with the same length, head and tail count as one: one line fewer.
 */
function kindKey(kind: string): string {
  if (kind.length <= MAX_KIND_CHARS) return kind;
  return `${kind.slice(0, 100)}…${kind.length}…${kind.slice(-40)}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * A function that cuts `secret` out of any text, in every encoding in which a server or a proxy
 * may echo it back: as is, JSON `\uXXXX` (and `\/`, `\"`, `\\`) escapes, percent-encoding
 * (UTF-8 bytes, `+` for a space), HTML numeric entities, any mix of them, any letter case. Run
 * it on the whole text, before anything decodes or clips it: a clipped or decoded key is no
 * longer recognised. Secrets under 4 characters are left alone (they would match everywhere).
 */
export function secretRedactor(secret: string | undefined): (text: string) => string {
  if (typeof secret !== 'string' || secret.length < 4) return (text) => text;
  const re = secretPattern(secret);
  const redact = (text: string): string => text.replace(re, REDACTED);
  // Every encoding but the plain one starts with `\`, `%` or `&` (or is `+`, for a space). So for
  // a secret of printable ASCII without spaces, a text with none of the three can only hold it
  // as is, in some letter case (the `i` flag without `u` never matches a non-ASCII character to
  // an ASCII one). Checked first, that spares most messages the regular expression, whose
  // compile at its first use (~2 ms: six alternatives per character) fell on a short-lived
  // process's last message, its shutdown summary (and on the first response, which delivery
  // redacts too).
  if (!PLAIN_ASCII.test(secret)) return redact;
  const lower = secret.toLowerCase();
  return (text) => (ENCODED.test(text) || text.toLowerCase().includes(lower) ? redact(text) : text);
}

const PLAIN_ASCII = /^[\x21-\x7e]+$/;
const ENCODED = /[\\%&]/;

/** @internal The regular expression of secretRedactor (its test compares the two). */
export function secretPattern(secret: string): RegExp {
  const parts: string[] = [];
  for (const ch of secret) {
    const cp = ch.codePointAt(0)!;
    const alts = new Set<string>([escapeRegExp(ch)]);
    let units = '';
    for (let i = 0; i < ch.length; i++) units += `\\\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
    alts.add(units);
    alts.add([...Buffer.from(ch, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''));
    if (ch === ' ') alts.add('\\+');
    if (ch === '/' || ch === '"' || ch === '\\') alts.add(`\\\\${escapeRegExp(ch)}`);
    alts.add(`&#0*${cp};`);
    alts.add(`&#x0*${cp.toString(16)};`);
    parts.push(`(?:${[...alts].join('|')})`);
  }
  return new RegExp(parts.join(''), 'gi');
}

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
  private log: Logger;
  private readonly redactors: Array<(text: string) => string> = [];
  private readonly secrets = new Set<string>();

  constructor(log: Logger = stderrLogger) {
    this.log = typeof log === 'function' ? log : stderrLogger;
  }

  /** From now on, `secret` is cut out of every message (see secretRedactor). */
  protect(secret: string | undefined): void {
    if (typeof secret !== 'string' || secret.length < 4 || this.secrets.has(secret)) return;
    this.secrets.add(secret);
    this.redactors.push(secretRedactor(secret));
  }

  /** Print `message` the first time `kind` is reported; later reports only count. */
  once(kind: string, message: string): void {
    const key = kindKey(String(kind));
    if (this.said.has(key)) return;
    // Kinds can carry user values: bound how many are remembered (their size is bounded above).
    if (this.said.size >= MAX_KINDS) {
      if (this.said.size === MAX_KINDS) {
        this.said.add('\u0000more');
        this.emit(`more than ${MAX_KINDS} kinds of problem: further new ones are only counted (see getCounters()).`);
      }
      return;
    }
    this.said.add(detached(key));
    this.emit(message);
  }

  /** Print every time: for problems that are rare by nature (configuration, auth). */
  say(message: string): void {
    this.emit(message);
  }

  drop(reason: DropReason, count = 1, kind?: string, message?: string): void {
    this.counters.dropped[reason] += count;
    if (message) this.once(kind ?? `drop:${reason}`, message);
  }

  /** The one way out: redact, escape, clip, then hand to the logger through a guard. */
  private emit(message: string): void {
    this.write(this.safe(typeof message === 'string' ? message : messageOf(message)));
  }

  private safe(text: string): string {
    for (const redact of this.redactors) text = redact(text);
    return safeLine(text);
  }

  /**
   * Calls the logger so that nothing it does reaches the caller: a throw, or a promise that
   * rejects, switches to stderr for good, said once there with the line that failed.
   */
  private write(line: string): void {
    const log = this.log;
    try {
      const r = log(line) as unknown;
      if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof (r as { then?: unknown }).then === 'function') {
        Promise.resolve(r as PromiseLike<unknown>).then(undefined, (err: unknown) => this.loggerFailed(log, err, line));
      }
    } catch (err) {
      this.loggerFailed(log, err, line);
    }
  }

  private loggerFailed(failed: Logger, err: unknown, line: string): void {
    if (this.log === failed && failed !== stderrLogger) {
      this.log = stderrLogger;
      // Redacted too: whatever the logger threw may quote the line it was given, or worse.
      stderrLogger(this.safe(`the logger option failed (${quote(this.safe(messageOf(err)))}); messages go to stderr from now on.`));
    }
    stderrLogger(line);
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
    // Numbers as JavaScript writes them: JSON would print NaN and Infinity as null.
    s = typeof value === 'number' ? String(value) : typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  } catch {
    // A BigInt inside, a cycle, a throwing toJSON or a Proxy: say what it is, never throw.
    try {
      s = Object.prototype.toString.call(value);
    } catch {
      s = `[${typeof value}]`;
    }
  }
  // JSON.stringify escapes strings but not e.g. String(symbol); strip what could break a line.
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  s = s.replace(/[\u0000-\u001f\u2028\u2029]/g, ' ');
  return s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
}
