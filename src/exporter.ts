// The SpanExporter: a thin shell that wires attributes → hierarchy → mapping → validation →
// delivery, and keeps the promises an OpenTelemetry exporter makes (never throw into the host,
// FAILED after shutdown, forceFlush/shutdown within their deadlines).
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createDelivery } from './delivery/index.js';
import type { Delivery, ReadyEvent } from './delivery/types.js';
import { Diagnostics, stderrLogger, type Counters } from './diagnostics.js';
import { PendingStore, type EvictReason } from './hierarchy/pending-store.js';
import { readCiAttributes, type CiAttributes } from './mapping/attributes.js';
import { LEVEL_ATTRIBUTE, LEVELS, type Level } from './mapping/fields.js';
import { mapSpanParts, type Defaults, type Lineage, type SpanData } from './mapping/transform.js';
import { resolveOptions, type DatadogCIPipelineExporterOptions, type ResolvedOptions } from './options.js';
import { eventJson } from './serialization/event-json.js';
import { validateEvent } from './validation/validate.js';

interface ResourceInfo {
  attrs: CiAttributes;
  defaults: Defaults;
}

/** Below the BatchSpanProcessor's default export timeout (30 s). */
const EXPORT_CALLBACK_MS = 20_000;
/** Spans resolved (mapped, validated, serialized) between two turns of the event loop: ~10 ms. */
const RESOLVE_SLICE = 500;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class DatadogCIPipelineExporter implements SpanExporter {
  private readonly diagnostics: Diagnostics;
  private readonly options: ResolvedOptions | undefined;
  private readonly store: PendingStore | undefined;
  private readonly delivery: Delivery | undefined;
  private readonly resources = new WeakMap<object, ResourceInfo>();
  /** Events produced while the store resolves spans; drained by each export(). */
  private ready: ReadyEvent[] = [];
  private now = 0;
  private shutdownPromise: Promise<void> | undefined;
  /** Export callbacks waiting for their events to settle. */
  private readonly waiting = new Set<() => void>();
  /** Set while the endpoint fails (a retry was needed); cleared by the next full delivery. */
  private troubled = false;
  private pumpRunning = false;
  private pumpDone: Promise<void> = Promise.resolve();
  /** Above this many unsettled events, resolving waits for delivery (see runPump). */
  private highWater = 0;
  /** Spans resolved per slice: small enough that a slice never overflows the queue by itself. */
  private slice = RESOLVE_SLICE;

  constructor(options: DatadogCIPipelineExporterOptions = {}) {
    this.diagnostics = new Diagnostics(options.logger ?? stderrLogger);
    const resolution = resolveOptions(options);
    if (!resolution.ok) {
      this.diagnostics.say(resolution.message);
      return;
    }
    this.options = resolution.options;
    this.store = new PendingStore(
      {
        maxPendingSpans: this.options.maxPendingSpans,
        maxRememberedSpans: this.options.maxRememberedSpans,
        maxAgeMs: this.options.maxEventAgeMs,
      },
      {
        resolve: (span, level, inherited) => this.emit(span, level, inherited),
        evict: (span, level, reason) => this.evicted(span, level, reason),
      },
      true,
    );
    this.highWater = Math.max(1, Math.floor(this.options.delivery.maxQueuedEvents / 2));
    this.slice = Math.min(RESOLVE_SLICE, this.highWater);
    this.delivery = createDelivery(this.options.delivery, this.diagnostics, { onRetry: () => this.endpointInTrouble() });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.shutdownPromise) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('DatadogCIPipelineExporter is shut down') });
      return;
    }
    const { store, delivery } = this;
    this.diagnostics.counters.spansReceived += spans.length;
    if (!store || !delivery) {
      this.diagnostics.counters.dropped.not_configured += spans.length;
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('DatadogCIPipelineExporter is not configured (see the message above)') });
      return;
    }
    try {
      this.now = Date.now();
      store.expire(this.now);
      for (const span of spans) store.add(span, this.levelOf(span));
    } catch (err) {
      // A bug of ours must not take the build down: report it and go on with what was made.
      this.diagnostics.once('internal', `internal error while exporting spans (please report it): ${errorText(err)}`);
    }
    const pumped = this.pump();
    // The callback waits for delivery so that provider.forceFlush() means "delivered", but it
    // reports SUCCESS whatever the outcome: a FAILED result (or a callback slower than the
    // BatchSpanProcessor's export timeout) makes the SDK skip this exporter's shutdown(), which
    // would lose the held spans and the spool. Delivery outcomes are reported by the counters
    // and on stderr instead. While the endpoint is in trouble the callback does not wait at all:
    // retries go on in the background, and provider.shutdown() is not held up before
    // exporter.shutdown() even starts its own deadline.
    if (this.troubled) {
      resultCallback({ code: ExportResultCode.SUCCESS });
      return;
    }
    const timer = setTimeout(() => release(), Math.min(this.options!.flushTimeoutMs, EXPORT_CALLBACK_MS));
    timer.unref();
    const release = this.untilSettledOrTrouble(pumped, () => {
      clearTimeout(timer);
      resultCallback({ code: ExportResultCode.SUCCESS });
    });
  }

  /**
   * Calls `then` once, when `p` settles or the endpoint gets into trouble, whichever is first.
   * Returns a function that calls it now (for timeouts).
   */
  private untilSettledOrTrouble(p: Promise<unknown>, then: () => void): () => void {
    let done = false;
    const release = (): void => {
      if (done) return;
      done = true;
      this.waiting.delete(release);
      then();
    };
    this.waiting.add(release);
    void p.then(release, release);
    return release;
  }

  private pump(): Promise<void> {
    if (this.pumpRunning) return this.pumpDone;
    this.pumpRunning = true;
    this.pumpDone = this.runPump();
    return this.pumpDone;
  }

  /**
   * Resolves held work in slices, giving the event loop back in between (a pipeline's arrival
   * can release 100,000 descendants), and hands each slice's events to delivery. Resolves when
   * the events of every slice of this run have settled.
   */
  private async runPump(): Promise<void> {
    const sends: Array<Promise<boolean>> = [];
    let awaited = 0;
    try {
      while (this.drainSlice(sends)) {
        await nextTurn();
        // Backpressure: while the endpoint keeps up, wait for it rather than outrun it into
        // queue_overflow. In an outage the bounded queue's drop-oldest rule applies instead.
        while (!this.troubled && this.diagnostics.counters.queued > this.highWater && awaited < sends.length) {
          const oldest = sends[awaited++]!;
          await new Promise<void>((resolve) => this.untilSettledOrTrouble(oldest, resolve));
        }
      }
    } finally {
      // Cleared before the first await below, so that work added from now on starts a new run.
      this.pumpRunning = false;
    }
    await Promise.all(sends);
  }

  /** Resolves one slice of held work and sends its events; returns whether work remains. */
  private drainSlice(sends?: Array<Promise<boolean>>): boolean {
    const store = this.store!;
    this.now = Date.now();
    let more: boolean;
    try {
      more = store.drain(this.slice);
    } catch (err) {
      this.diagnostics.once('internal', `internal error while resolving spans (please report it): ${errorText(err)}`);
      more = store.hasWork;
    }
    const events = this.takeReady();
    if (events.length > 0) {
      const sent = this.delivery!.send(events).then((ok) => {
        if (ok) this.troubled = false;
        return ok;
      });
      sends?.push(sent);
    }
    return more;
  }

  private endpointInTrouble(): void {
    this.troubled = true;
    for (const release of [...this.waiting]) release();
  }

  /** Resolves when every event that can be emitted so far has been delivered or has definitively failed (bounded by flushTimeoutMs). */
  async forceFlush(): Promise<void> {
    if (!this.delivery || !this.options) return;
    await this.delivery.flush(this.options.flushTimeoutMs);
  }

  /** Emits what is still held (as far as it can be), delivers within shutdownTimeoutMs, then refuses further exports. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  /** Counters of what came in, went out, and was dropped and why (see the README's "Delivery guarantees"). */
  getCounters(): Counters {
    const c = this.diagnostics.snapshot();
    c.pending = this.store?.pendingCount ?? 0;
    return c;
  }

  private async doShutdown(): Promise<void> {
    const { store, delivery, options } = this;
    if (!store || !delivery || !options) return;
    try {
      this.now = Date.now();
      store.resolveOrphans();
    } catch (err) {
      this.diagnostics.once('internal', `internal error at shutdown (please report it): ${errorText(err)}`);
    }
    while (this.drainSlice()) await nextTurn();
    await delivery.shutdown(options.shutdownTimeoutMs);
    const summary = this.diagnostics.summary();
    if (summary) this.diagnostics.say(summary);
  }

  private takeReady(): ReadyEvent[] {
    const events = this.ready;
    this.ready = [];
    return events;
  }

  private levelOf(span: ReadableSpan): Level | undefined {
    const raw = span.attributes[LEVEL_ATTRIBUTE];
    if (raw === undefined) return undefined;
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

  /** The store's resolve callback: map, validate, serialize. Returns what descendants inherit. */
  private emit(span: SpanData, level: Level, inherited: Lineage): Lineage {
    try {
      return this.emitOne(span, level, inherited);
    } catch (err) {
      // One span that trips a bug of ours must not hold back the rest, nor its descendants.
      this.diagnostics.drop('invalid', 1, 'internal-span', `${describe(span, level)} not sent: internal error (please report it): ${errorText(err)}`);
      return inherited;
    }
  }

  private emitOne(span: SpanData, level: Level, inherited: Lineage): Lineage {
    const resource = this.resourceInfo(span.resource);
    const attrs = readCiAttributes(span.attributes, (key, problem) =>
      this.diagnostics.once(`attr:${key}`, `${describe(span, level)}: attribute ${key} ${problem}.`),
    );
    const mapped = mapSpanParts(span, level, attrs, resource.attrs, inherited, resource.defaults);
    const what = describer(span, level, mapped.resource.name);
    const fallback = span.status.code === SpanStatusCode.ERROR ? 'error' : 'success';
    const verdict = validateEvent(mapped.resource, mapped, what, this.now, fallback, this.options!.maxEventAgeMs, mapped.shared);
    if (verdict.fixes.length > 0) {
      this.diagnostics.counters.eventsFixed++;
      for (const f of verdict.fixes) this.diagnostics.once(f.kind, `${f.message} (reported once; see getCounters().eventsFixed)`);
    }
    if (!verdict.ok) {
      this.diagnostics.drop(verdict.reason, 1, verdict.problem.kind, `${verdict.problem.message} (reported once; see getCounters().dropped)`);
      return mapped.lineage;
    }
    const json = eventJson(mapped.resource, mapped.shared, mapped.envelope);
    this.ready.push({ json, bytes: Buffer.byteLength(json), timeMs: mapped.timeMs, describe: what });
    this.diagnostics.counters.eventsReady++;
    return mapped.lineage;
  }

  private evicted(span: SpanData, level: Level, reason: EvictReason): void {
    const why =
      reason === 'pending_overflow'
        ? `more than maxPendingSpans (${this.options!.maxPendingSpans}) spans were waiting for their ancestors; the oldest was dropped. Raise maxPendingSpans or check that the pipeline span ends and is exported.`
        : reason === 'pending_expired'
          ? `it waited for its ancestors until it was too old to send; check that its pipeline span ends and is exported.`
          : `its ancestors never arrived.`;
    this.diagnostics.drop(reason, 1, `evict:${reason}`, `${describe(span, level)} not sent: ${why} (reported once; see getCounters().dropped)`);
  }

  private resourceInfo(resource: { attributes: Attributes }): ResourceInfo {
    let info = this.resources.get(resource);
    if (info) return info;
    const a = resource.attributes;
    const attrs = readCiAttributes(a, (key, problem) => this.diagnostics.once(`resource-attr:${key}`, `resource attribute ${key} ${problem}.`));
    const envFromResource = a['deployment.environment.name'] ?? a['deployment.environment'];
    const defaults: Defaults = { provider_name: this.options!.providerName };
    const env = this.options!.env ?? (envFromResource === undefined ? undefined : String(envFromResource));
    if (env !== undefined) defaults.env = env;
    if (this.options!.service !== undefined) defaults.service = this.options!.service;
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

function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}
