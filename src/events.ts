// Span → ready event: parse the `ci.*` attributes, map, validate, serialize, and say what was
// wrong (once per kind) when something was. The store calls build() once a span's ancestors are
// known; what it returns is what the span's descendants inherit.
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpanLike as ReadableSpan } from './otel-types.js';
import type { ReadyEvent } from './delivery/types.js';
import type { Diagnostics } from './diagnostics.js';
import type { EvictReason } from './hierarchy/pending-store.js';
import { readCiAttributes, type CiAttributes } from './mapping/attributes.js';
import { LEVEL_ATTRIBUTE, LEVELS, type Level } from './mapping/fields.js';
import { mapSpanParts, parentOf, type Defaults, type Lineage, type SpanData } from './mapping/transform.js';
import type { ResolvedOptions } from './options.js';
import { eventJson } from './serialization/event-json.js';
import { validateEvent } from './validation/validate.js';

interface ResourceInfo {
  attrs: CiAttributes;
  defaults: Defaults;
}

export class EventBuilder {
  /** Parsed resource-level `ci.*` attributes and defaults, once per Resource object. */
  private readonly resources = new WeakMap<object, ResourceInfo>();

  constructor(
    private readonly options: ResolvedOptions,
    private readonly diagnostics: Diagnostics,
  ) {}

  /** The span's `ci.level`, or undefined (unlabelled, or an unknown value: warned once). */
  levelOf(span: ReadableSpan): Level | undefined {
    const raw = span.attributes[LEVEL_ATTRIBUTE];
    if (raw === undefined) return undefined;
    const level = parseLevel(raw);
    if (level) return level;
    const value = String(raw).trim().toLowerCase();
    this.diagnostics.counters.dropped.unknown_level++;
    this.diagnostics.once(
      `unknown-level:${value}`,
      `${describe(span)}: ci.level "${String(raw)}" is not one of ${LEVELS.join(', ')}; the span is not exported (its children still link through it).`,
    );
    return undefined;
  }

  /**
   * The store's resolve callback: map, validate, serialize into `out`. Returns what the span's
   * descendants inherit.
   */
  build(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[]): Lineage {
    try {
      return this.buildOne(span, level, inherited, now, out);
    } catch (err) {
      // One span that trips a bug of ours must not hold back the rest, nor its descendants.
      this.diagnostics.drop('invalid', 1, 'internal-span', `${describe(span, level)} not sent: internal error (please report it): ${errorText(err)}`);
      return inherited;
    }
  }

  private buildOne(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[]): Lineage {
    const resource = this.resourceInfo(span.resource);
    const attrs = readCiAttributes(span.attributes, (key, problem) =>
      this.diagnostics.once(`attr:${key}`, `${describe(span, level)}: attribute ${key} ${problem}.`),
    );
    const mapped = mapSpanParts(span, level, attrs, resource.attrs, inherited, resource.defaults);
    const what = describer(span, level, mapped.resource.name);
    const fallback = span.status.code === SpanStatusCode.ERROR ? 'error' : 'success';
    const verdict = validateEvent(mapped.resource, mapped, what, now, fallback, this.options.maxEventAgeMs, mapped.shared);
    if (verdict.fixes.length > 0) {
      this.diagnostics.counters.eventsFixed++;
      for (const f of verdict.fixes) this.diagnostics.once(f.kind, `${f.message} (reported once; see getCounters().eventsFixed)`);
    }
    if (!verdict.ok) {
      this.diagnostics.drop(verdict.reason, 1, verdict.problem.kind, `${verdict.problem.message} (reported once; see getCounters().dropped)`);
      return mapped.lineage;
    }
    const json = eventJson(mapped.resource, mapped.shared, mapped.envelope);
    out.push({ json, bytes: Buffer.byteLength(json), timeMs: mapped.timeMs, describe: what });
    this.diagnostics.counters.eventsReady++;
    return mapped.lineage;
  }

  /**
   * What a span's descendants inherit, from its attributes as they are now (the span processor
   * calls it at onStart): the same mapping build() runs at the end, so the IDs and names agree.
   * Problems are not reported here; build() reports them once the span has ended.
   */
  lineageAt(span: SpanData, level: Level, inherited: Lineage): Lineage {
    const resource = this.resourceInfo(span.resource);
    const attrs = readCiAttributes(span.attributes, () => {});
    return mapSpanParts(span, level, attrs, resource.attrs, inherited, resource.defaults).lineage;
  }

  /**
   * A running event for a pipeline or job that has just started: the span as it is now, with
   * `ci.status` running (mapSpanParts then leaves `end` out), so its IDs, name, url and start are
   * those of the finished event that replaces it.
   */
  buildRunning(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[]): void {
    const running: SpanData = {
      name: span.name,
      spanContext: () => span.spanContext(),
      parentSpanContext: parentOf(span),
      startTime: span.startTime,
      endTime: span.startTime,
      status: { code: SpanStatusCode.UNSET },
      attributes: { ...span.attributes, [STATUS_ATTRIBUTE]: 'running' },
      events: [],
      resource: span.resource,
    };
    this.build(running, level, inherited, now, out);
  }

  /** The store's evict callback: a held span leaves without an event. */
  evicted(span: SpanData, level: Level, reason: EvictReason): void {
    const why =
      reason === 'pending_overflow'
        ? `more than maxPendingSpans (${this.options.maxPendingSpans}) spans were waiting for their ancestors; the oldest was dropped. Raise maxPendingSpans or check that the pipeline span ends and is exported.`
        : reason === 'pending_expired'
          ? `it waited for its ancestors until it was too old to send; check that its pipeline span ends and is exported.`
          : reason === 'shutdown'
            ? `the shutdown deadline (shutdownTimeoutMs ${this.options.shutdownTimeoutMs} ms) passed before it could be resolved; raise shutdownTimeoutMs.`
            : `its ancestors never arrived.`;
    this.diagnostics.drop(reason, 1, `evict:${reason}`, `${describe(span, level)} not sent: ${why} (reported once; see getCounters().dropped)`);
  }

  private resourceInfo(resource: { attributes: Attributes }): ResourceInfo {
    let info = this.resources.get(resource);
    if (info) return info;
    const a = resource.attributes;
    const attrs = readCiAttributes(a, (key, problem) => this.diagnostics.once(`resource-attr:${key}`, `resource attribute ${key} ${problem}.`));
    const envFromResource = a['deployment.environment.name'] ?? a['deployment.environment'];
    const defaults: Defaults = { provider_name: this.options.providerName };
    const env = this.options.env ?? (envFromResource === undefined ? undefined : String(envFromResource));
    if (env !== undefined) defaults.env = env;
    if (this.options.service !== undefined) defaults.service = this.options.service;
    if (a['host.name'] !== undefined) defaults.hostname = String(a['host.name']);
    info = { attrs, defaults };
    this.resources.set(resource, info);
    return info;
  }
}

function describe(span: SpanData, level?: Level, name = span.name): string {
  const { traceId, spanId } = span.spanContext();
  return describeSpan(level, name, traceId, spanId);
}

/**
 * describe(), deferred: most events are never named in a message. It keeps the ID and name
 * strings, not the span, so a queued event does not hold its span's attributes in memory.
 */
function describer(span: SpanData, level: Level, name: string): () => string {
  const { traceId, spanId } = span.spanContext();
  return () => describeSpan(level, name, traceId, spanId);
}

function describeSpan(level: Level | undefined, name: string, traceId: string, spanId: string): string {
  return `${level ?? 'span'} ${JSON.stringify(name)} (trace ${traceId}, span ${spanId})`;
}

/** A `ci.level` value as a level (case and spaces forgiven), or undefined. */
export function parseLevel(raw: unknown): Level | undefined {
  if (raw === 'step' || raw === 'job' || raw === 'stage' || raw === 'pipeline') return raw;
  if (raw === undefined || raw === null) return undefined;
  const value = String(raw).trim().toLowerCase();
  return (LEVELS as readonly string[]).includes(value) ? (value as Level) : undefined;
}

const STATUS_ATTRIBUTE = 'ci.status';

export function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
