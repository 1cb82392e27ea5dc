// Span → ready event: parse the `ci.*` attributes, map, validate, serialize, and say what was
// wrong (once per kind) when something was. The store calls build() once a span's ancestors are
// known; what it returns is what the span's descendants inherit.
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpanLike as ReadableSpan } from './otel-types.js';
import type { ReadyEvent } from './delivery/types.js';
import { quote, type Diagnostics } from './diagnostics.js';
import { VOCAB, type EvictReason, type StoreLevel } from './hierarchy/pending-store.js';
import { readCiAttributes, type CiAttributes, type ProblemSink } from './mapping/attributes.js';
import { LEVEL_ATTRIBUTE, LEVELS, parseLevel, type Level } from './mapping/fields.js';
import { mapSpanParts, parentOf, type Defaults, type Lineage, type SpanData } from './mapping/transform.js';
import type { ResolvedOptions } from './options.js';
import { buildEvent } from './serialization/event-json.js';
import { validateEvent } from './validation/validate.js';
import { detectCiEnvironment, detectGit, sendableGit, withLocalGit, type DetectedEnvironment } from './detect/index.js';
import { apiKeyNeedle, scrubEvent, type ScrubConfig } from './mapping/scrub.js';
import { datadogFallback, VOCABULARY_NAMES, VocabularyRegistry, type VocabSpan } from './vocabularies/index.js';

interface ResourceInfo {
  attrs: CiAttributes;
  defaults: Defaults;
}

export class EventBuilder {
  /** Parsed resource-level `ci.*` attributes and defaults, once per Resource object. */
  private readonly resources = new WeakMap<object, ResourceInfo>();
  /**
   * The CI/git detection layer (undefined when turned off): the provider's variables at once, the
   * local repository's git when `git` answers (see startDetection).
   */
  private readonly detected: DetectedEnvironment | undefined;
  private readonly scrub: ScrubConfig;
  /** The API key as it would appear in JSON; events are searched for it once serialized. */
  private readonly keyNeedle: string | undefined;
  /** Eviction reasons already reported (their count goes on in the counters). */
  private readonly evictionsSaid = new Set<EvictReason>();
  /** Other tools' vocabularies (src/vocabularies); undefined when the option turns them all off. */
  private readonly vocab: VocabularyRegistry | undefined;
  /**
   * The span whose attributes buildOne is reading, for the two problem sinks below: made once,
   * not as two closures per span (reading is synchronous, so one span at a time).
   */
  private readingSpan: SpanData | undefined;
  private readingLevel: Level | undefined;
  private readonly ownProblem: ProblemSink = (key, problem) => this.attributeProblem(key, problem, '');
  private readonly vocabProblem: ProblemSink = (key, problem) => this.attributeProblem(key, problem, " (from another tool's vocabulary)");

  constructor(
    private readonly options: ResolvedOptions,
    private readonly diagnostics: Diagnostics,
  ) {
    this.scrub = { redactParameter: options.redactParameter };
    this.keyNeedle = apiKeyNeedle(options.delivery.apiKey);
    if (options.detectEnvironment) this.detected = this.startDetection();
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
    const level = parseLevel(raw);
    if (level) return level;
    const value = String(raw).trim().toLowerCase();
    this.diagnostics.counters.dropped.unknown_level++;
    this.diagnostics.once(
      `unknown-level:${value.slice(0, 64)}`,
      `${describe(span)}: ci.level ${quote(raw)} is not one of ${LEVELS.join(', ')}; the span is not exported (its children still link through it).`,
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
      this.diagnostics.drop('invalid', 1, internalKind('span', err), `${describe(span, level === VOCAB ? undefined : level)} not sent: internal error (please report it): ${errorText(err)}`);
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
    this.readingSpan = span;
    this.readingLevel = level;
    let attrs: CiAttributes;
    try {
      attrs = this.attributesOf(span, level, vocabValues, this.ownProblem, this.vocabProblem);
    } finally {
      this.readingSpan = undefined; // not kept alive until the next span, even when reading threw
    }
    const mapped = mapSpanParts(span, level, attrs, resource.attrs, inherited, resource.defaults);
    scrubEvent(mapped.resource, mapped.shared, this.scrub);
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
    out.push(buildEvent(mapped.resource, mapped.shared, mapped.envelope, this.keyNeedle, mapped.timeMs, what));
    this.diagnostics.counters.eventsReady++;
    return mapped.lineage;
  }

  private attributeProblem(key: string, problem: string, from: string): void {
    const span = this.readingSpan;
    const what = span ? describe(span, this.readingLevel) : 'a span';
    this.diagnostics.once(`attr:${attributeKind(key)}`, `${what}: attribute ${attributeText(key)}${from} ${problem}.`);
  }

  /** The store's cycle callback: `span` is its own ancestor (its members resolve as orphans). */
  cycle(span: SpanData, level: StoreLevel | undefined): void {
    this.diagnostics.once(
      'cycle',
      `${describe(span, level === VOCAB ? undefined : level)} is its own ancestor: its parent span IDs form a loop, so no pipeline can be found above it; the spans in the loop are sent without one (dropped as orphaned unless they carry ci.pipeline_unique_id and ci.pipeline_name). Check the parent IDs the code that builds these spans sets.`,
    );
  }

  /**
   * What a span's descendants inherit, from its attributes as they are now (the span processor
   * calls it at onStart): the same mapping build() runs at the end, so the IDs and names agree.
   * Problems are not reported here; build() reports them once the span has ended.
   */
  lineageAt(span: SpanData, level: Level, inherited: Lineage): Lineage {
    const resource = this.resourceInfo(span.resource);
    const attrs = this.attributesOf(span, level, undefined, IGNORE_PROBLEM, IGNORE_PROBLEM);
    return mapSpanParts(span, level, attrs, resource.attrs, inherited, resource.defaults).lineage;
  }

  /**
   * A span's `ci.*` attributes as the mapping reads them: its own keys over another vocabulary's
   * values and Datadog's tag names (when it carries some). build() and lineageAt() both read them
   * here, so the live path learns exactly the lineage the exporter computes.
   */
  private attributesOf(span: SpanData, level: Level, vocabValues: Attributes | undefined, ownProblem: ProblemSink, vocabProblem: ProblemSink): CiAttributes {
    const attrs = readCiAttributes(span.attributes, ownProblem);
    let below = vocabValues;
    if (attrs.datadog && this.vocab?.datadog) {
      const fb = datadogFallback(span.attributes, level);
      if (fb) below = layerBelow(fb.values, fb.tags, vocabValues);
    }
    if (below) {
      const lower = readCiAttributes(below, vocabProblem);
      for (const v of attrs.values) lower.values.push(v); // pairs, kept in order
      attrs.values = lower.values;
      if (lower.parameters) attrs.parameters = { ...lower.parameters, ...attrs.parameters };
    }
    return attrs;
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
    // A shutdown deadline can evict 100,000 spans in one go: the message is built once.
    if (this.evictionsSaid.has(reason)) {
      this.diagnostics.drop(reason, 1);
      return;
    }
    this.evictionsSaid.add(reason);
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
    const attrs = readCiAttributes(a, (key, problem) => this.diagnostics.once(`resource-attr:${attributeKind(key)}`, `resource attribute ${attributeText(key)} ${problem}.`));
    const envFromResource = a['deployment.environment.name'] ?? a['deployment.environment'];
    const defaults: Defaults = { provider_name: this.options.providerName };
    const env = this.options.env ?? (envFromResource === undefined ? undefined : String(envFromResource));
    if (env !== undefined) defaults.env = env;
    if (this.options.service !== undefined) defaults.service = this.options.service;
    if (a['host.name'] !== undefined) defaults.hostname = String(a['host.name']);
    if (this.detected) defaults.detected = this.detected;
    info = { attrs, defaults };
    this.resources.set(resource, info);
    return info;
  }

  /**
   * Once per exporter, at its construction (not at import): the CI provider's variables now, and
   * `git` in the background (once per process, ≤ 1 s, see detect/git.ts); events built before git
   * answers go without the local repository's details. Git goes in only when Datadog can take it
   * on its own (repository URL, SHA, author email); otherwise validation would leave it out, with
   * a message, on every run.
   */
  private startDetection(): DetectedEnvironment {
    const ci = detectCiEnvironment(process.env);
    const layer: DetectedEnvironment = { pipeline: ci.pipeline, job: ci.job, node: ci.node };
    if (ci.provider !== undefined) layer.provider = ci.provider;
    if (sendableGit(ci.git)) layer.git = ci.git;
    let cwd: string;
    try {
      cwd = process.cwd();
    } catch {
      return layer; // the working directory was deleted: no repository to ask
    }
    void detectGit(cwd, process.env, undefined, true).then((local) => {
      const full = withLocalGit(ci, local);
      if (sendableGit(full.git)) layer.git = full.git;
    });
    return layer;
  }
}

/** lineageAt's sink: problems are reported by build(), once the span has ended. */
const IGNORE_PROBLEM: ProblemSink = () => {};

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
  return `${level ?? 'span'} ${quote(name, 100)} (trace ${idText(traceId)}, span ${idText(spanId)})`;
}

/** An attribute key in a message: as it is when it is a plain key, else quoted (keys are user data too). */
const attributeText = (key: string): string => (key.length <= 100 && /^[\w.*-]+$/.test(key) ? key : quote(key, 100));
/** One kind for all `ci.parameters.*` keys: each distinct key must not be a message of its own. */
const attributeKind = (key: string): string => (key.startsWith('ci.parameters.') ? 'ci.parameters.*' : key.slice(0, 100));

/** A trace or span ID as it is (hex), or quoted when a hand-made span gave something else. */
const idText = (id: string): string => (id.length <= 64 && /^[0-9a-fA-F]+$/.test(id) ? id : quote(id, 64));

const STATUS_ATTRIBUTE = 'ci.status';

/** An error for a message: its stack, clipped and escaped (a message can be user data). */
export function errorText(err: unknown): string {
  let text: unknown = err;
  try {
    text = err instanceof Error ? (err.stack ?? err.message) : err;
  } catch {
    // a getter that throws: say what we can
  }
  return quote(text, 1000);
}

/**
 * The once-per-kind key of an internal error: its kind of error and first words, so that each
 * distinct bug is reported (not only the first one of the process), bounded in size.
 */
export function internalKind(where: string, err: unknown): string {
  let head = '';
  try {
    head = err instanceof Error ? `${err.name}:${err.message}` : typeof err;
  } catch {
    head = 'unreadable';
  }
  return `internal:${where}:${head.slice(0, 80)}`;
}
