// Span → ready event: parse the `ci.*` attributes, map, validate, serialize, and say what was
// wrong (once per kind) when something was. The store calls build() once a span's ancestors are
// known; what it returns is what the span's descendants inherit.
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpanLike as ReadableSpan } from './otel-types.js';
import type { ReadyEvent } from './delivery/types.js';
import type { Diagnostics } from './diagnostics.js';
import { VOCAB, type EvictReason, type StoreLevel } from './hierarchy/pending-store.js';
import { readCiAttributes, type CiAttributes } from './mapping/attributes.js';
import { LEVEL_ATTRIBUTE, LEVELS, type Level } from './mapping/fields.js';
import { mapSpanParts, type Defaults, type Lineage, type SpanData } from './mapping/transform.js';
import type { ResolvedOptions } from './options.js';
import { eventJson } from './serialization/event-json.js';
import { validateEvent } from './validation/validate.js';
import { datadogFallback, VOCABULARY_NAMES, VocabularyRegistry, type VocabSpan } from './vocabularies/index.js';

interface ResourceInfo {
  attrs: CiAttributes;
  defaults: Defaults;
}

export class EventBuilder {
  /** Parsed resource-level `ci.*` attributes and defaults, once per Resource object. */
  private readonly resources = new WeakMap<object, ResourceInfo>();
  /** Other tools' vocabularies (src/vocabularies); undefined when the option turns them all off. */
  private readonly vocab: VocabularyRegistry | undefined;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly diagnostics: Diagnostics,
  ) {
    // Undefined (a configuration built without this option) means the option's default: all.
    const registry = new VocabularyRegistry(options.vocabularies ?? VOCABULARY_NAMES);
    this.vocab = registry.empty && !registry.datadog ? undefined : registry;
  }

  /**
   * The span's `ci.level`; VOCAB for an unlabelled span a vocabulary recognises (its level is
   * decided when its lineage is known); undefined otherwise (or an unknown value: warned once).
   */
  levelOf(span: ReadableSpan): StoreLevel | undefined {
    const raw = span.attributes[LEVEL_ATTRIBUTE];
    if (raw === undefined) return this.vocab?.recognise(span) ? VOCAB : undefined;
    if (raw === 'step' || raw === 'job' || raw === 'stage' || raw === 'pipeline') return raw;
    const value = String(raw).trim().toLowerCase();
    if ((LEVELS as readonly string[]).includes(value)) return value as Level;
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
  build(span: SpanData, level: StoreLevel, inherited: Lineage, now: number, out: ReadyEvent[], children?: () => SpanData[]): Lineage {
    try {
      if (level === VOCAB) return this.buildVocab(span, inherited, now, out, children);
      return this.buildOne(span, level, inherited, now, out);
    } catch (err) {
      // One span that trips a bug of ours must not hold back the rest, nor its descendants.
      this.diagnostics.drop('invalid', 1, 'internal-span', `${describe(span, level === VOCAB ? undefined : level)} not sent: internal error (please report it): ${errorText(err)}`);
      return inherited;
    }
  }

  /** A vocabulary decides, now that the lineage is known: an event (its values below the span's own ci.*), or lineage passed through. */
  private buildVocab(span: SpanData, inherited: Lineage, now: number, out: ReadyEvent[], children?: () => SpanData[]): Lineage {
    const d = this.vocab!.resolve(span as VocabSpan, inherited, children as (() => VocabSpan[]) | undefined);
    if (!d.level) return d.context ? { ...inherited, vocab: d.context } : inherited;
    const lineage = this.buildOne(span, d.level, inherited, now, out, d.values ?? {});
    return d.context ? { ...lineage, vocab: d.context } : lineage;
  }

  private buildOne(span: SpanData, level: Level, inherited: Lineage, now: number, out: ReadyEvent[], vocabValues?: Attributes): Lineage {
    const resource = this.resourceInfo(span.resource);
    // The sink is passed inline: a named closure per span costs (tsx's keepNames wraps it).
    const attrs = readCiAttributes(span.attributes, (key, problem) =>
      this.diagnostics.once(`attr:${key}`, `${describe(span, level)}: attribute ${key} ${problem}.`),
    );
    // Another vocabulary's values (or Datadog's tag names) lie below the span's own ci.* keys.
    let below = vocabValues;
    if (attrs.datadog && this.vocab?.datadog) {
      const fb = datadogFallback(span.attributes, level);
      if (fb) below = layerBelow(fb.values, fb.tags, vocabValues);
    }
    if (below) {
      const lower = readCiAttributes(below, (key, problem) =>
        this.diagnostics.once(`attr:${key}`, `${describe(span, level)}: attribute ${key} (from another tool's vocabulary) ${problem}.`),
      );
      for (const v of attrs.values) lower.values.push(v);
      attrs.values = lower.values;
      if (lower.parameters) attrs.parameters = { ...lower.parameters, ...attrs.parameters };
    }
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

  /** The store's evict callback: a held span leaves without an event. */
  evicted(span: SpanData, storeLevel: StoreLevel, reason: EvictReason): void {
    // A vocabulary span that would only have passed lineage through leaves without a word.
    let level: Level | undefined;
    if (storeLevel !== VOCAB) level = storeLevel;
    else {
      try {
        level = this.vocab?.levelIfEvicted(span as VocabSpan);
        if (!level) return;
      } catch {
        level = undefined; // a vocabulary's bug: still counted below, as a plain span
      }
    }
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

/** Datadog's tag names' values under a vocabulary's (tags of both kept). */
function layerBelow(values: Attributes, tags: string[], upper: Attributes | undefined): Attributes {
  const out: Attributes = { ...values, ...upper };
  const upperTags = upper?.['ci.tags'];
  const all = Array.isArray(upperTags) ? [...tags, ...(upperTags as string[])] : tags;
  if (all.length > 0) out['ci.tags'] = all;
  return out;
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

export function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
