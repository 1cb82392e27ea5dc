// The SpanExporter: wires spans → hierarchy → events (mapping, validation, serialization) →
// delivery, schedules the resolution of held spans in slices, and keeps the promises an
// OpenTelemetry exporter makes (never throw into the host, FAILED after shutdown,
// forceFlush/shutdown within their deadlines).
import { ExportResultCode, type ExportResult, type ReadableSpanLike as ReadableSpan, type SpanExporterLike as SpanExporter } from './otel-types.js';
import { createDelivery } from './delivery/index.js';
import { within } from './delivery/timers.js';
import type { Delivery, ReadyEvent } from './delivery/types.js';
import { Diagnostics, MAX_LINE, stderrLogger, type Counters } from './diagnostics.js';
import { errorText, EventBuilder, internalKind } from './events.js';
import { PendingStore, VOCAB, type StoreLevel } from './hierarchy/pending-store.js';
import { LEVEL_ATTRIBUTE, type Level } from './mapping/fields.js';
import type { Lineage } from './mapping/transform.js';
import { resolveOptions, type DatadogCIPipelineExporterOptions, type ResolvedOptions } from './options.js';
import { admitSpan, refuse } from './span-shape.js';

/** Below the BatchSpanProcessor's default export timeout (30 s). */
const EXPORT_CALLBACK_MS = 20_000;
/** Spans resolved (mapped, validated, serialized) between two turns of the event loop: ~10 ms. */
const RESOLVE_SLICE = 500;
/**
 * A slice also ends once it has taken this long: on a loaded machine (or a slow one) 500 spans
 * take several times 10 ms, and a turn that long delays the host's own timers and I/O.
 */
const SLICE_MS = 8;
/** Spans resolved between two looks at the clock. */
const SLICE_CHUNK = 50;

/**
 * The live path (DatadogCIPipelineSpanProcessor): spans whose lineage the processor learned at
 * start, built with this exporter's EventBuilder and handed to its delivery, bypassing the store.
 * A symbol, not a public method: it is not part of the exporter's API.
 * @internal
 */
export const LIVE = Symbol('datadog-ci-pipeline-exporter.live');

/** @internal */
export interface LiveItem {
  span: ReadableSpan;
  level: Level;
  /** What the span inherits from its labelled ancestors, as the processor learned at start. */
  inherited: Lineage;
  /** A running event (the span has just started) rather than the finished one. */
  running?: boolean;
}

/** @internal */
export interface LivePath {
  diagnostics: Diagnostics;
  maxEventAgeMs: number;
  flushTimeoutMs: number;
  /** The settings a nested `run` in a child process needs (see propagation.ts); never the API key. */
  settings: { endpoint?: string; site?: string; env?: string; service?: string; providerName: string };
  /** What a span's descendants inherit, from its attributes as they are now (EventBuilder.lineageAt). */
  lineageAt(span: ReadableSpan, level: Level, inherited: Lineage): Lineage;
  /** The span's ci.level; an unknown value is counted and reported once. */
  levelOf(span: ReadableSpan): Level | undefined;
  /** A span without ci.level that one of the enabled vocabularies would turn into an event. */
  recognise(span: ReadableSpan): boolean;
  /**
   * Files spans through the exporter's own path (the hierarchy store), for traces whose levels a
   * vocabulary decides from their ancestors; resolves when export() calls back.
   */
  file(spans: ReadableSpan[]): Promise<void>;
  /** Builds and sends; resolves when every event settled (true: all delivered). Never rejects. */
  send(items: LiveItem[]): Promise<boolean>;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class DatadogCIPipelineExporter implements SpanExporter {
  private readonly diagnostics: Diagnostics;
  private readonly options: ResolvedOptions | undefined;
  private readonly store: PendingStore<StoreLevel> | undefined;
  private readonly delivery: Delivery | undefined;
  private readonly events: EventBuilder | undefined;
  /** Events produced while the store resolves spans; taken by drainSlice(). */
  private ready: ReadyEvent[] = [];
  private now = 0;
  private shutdownPromise: Promise<void> | undefined;
  /** Export callbacks waiting for their events to settle. */
  private readonly waiting = new Set<() => void>();
  /** Set while the endpoint fails (a retry was needed); cleared when Datadog accepts a batch. */
  private troubled = false;
  private pumpRunning = false;
  /** The current pump run: its loop (all work handed to delivery), and its events settled. */
  private pumpLoop: Promise<void> = Promise.resolve();
  private pumpDone: Promise<void> = Promise.resolve();
  /** Sends not yet settled, oldest first (a handful: each is up to a body of events). */
  private readonly outstanding = new Set<Promise<boolean>>();
  /** Above this many unsettled events, resolving waits for delivery (see drainAll). */
  private highWater = 0;
  /** Spans resolved per slice: at most a quarter of the queue (see drainAll). */
  private slice = RESOLVE_SLICE;
  /**
   * Events gathered across slices into sends of this many (one body each), the rest waiting for
   * the next slices; all of them go out near the byte cap or when the run has no work left. At
   * most a quarter of the queue too, for the same reason as the slice.
   */
  private sealAt = RESOLVE_SLICE;
  private sealBytes = Infinity;
  /** UTF-8 bytes of the events in `ready` (counted up to readyCounted). */
  private readyBytes = 0;
  private readyCounted = 0;
  /** The run whose sends the gathered events belong to (a pump and shutdown may overlap). */
  private readySends: Array<Promise<boolean>> | undefined;

  constructor(options: DatadogCIPipelineExporterOptions | null = {}) {
    // Options are judged before anything reads them (null, a non-object, a throwing getter and a
    // non-function logger included): resolveOptions never throws, and Diagnostics guards the logger.
    const resolution = resolveOptions(options);
    this.diagnostics = new Diagnostics(resolution.logger ?? stderrLogger);
    this.diagnostics.protect(resolution.apiKey);
    for (const note of resolution.notes) this.diagnostics.say(note);
    if (!resolution.ok) {
      // One line for the whole configuration error, unless that line would be cut: then one per problem.
      const lines = resolution.message.length <= MAX_LINE ? [resolution.message] : resolution.problems;
      for (const line of lines) this.diagnostics.say(line);
      return;
    }
    this.options = resolution.options;
    this.events = new EventBuilder(this.options, this.diagnostics);
    this.store = new PendingStore<StoreLevel>(
      {
        maxPendingSpans: this.options.maxPendingSpans,
        maxRememberedSpans: this.options.maxRememberedSpans,
        maxAgeMs: this.options.maxEventAgeMs,
      },
      {
        resolve: (span, level, inherited, children) => this.events!.build(span, level, inherited, this.now, this.ready, children),
        evict: (span, level, reason) => this.events!.evicted(span, level, reason),
        cycle: (span, level) => this.events!.cycle(span, level),
      },
      true,
    );
    this.highWater = Math.max(1, Math.floor(this.options.delivery.maxQueuedEvents / 2));
    this.slice = Math.max(1, Math.min(RESOLVE_SLICE, Math.floor(this.highWater / 2)));
    this.sealAt = Math.max(this.slice, Math.min(this.options.delivery.maxBatchEvents, Math.floor(this.highWater / 2)));
    this.sealBytes = this.options.delivery.maxBatchBytes;
    this.delivery = createDelivery(this.options.delivery, this.diagnostics, {
      onRetry: () => this.endpointInTrouble(),
      onDelivered: () => {
        this.troubled = false;
      },
    });
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    // Hand-written callers may leave the callback out: there is then nobody to tell.
    if (typeof resultCallback !== 'function') resultCallback = () => undefined;
    if (this.shutdownPromise) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('DatadogCIPipelineExporter is shut down') });
      return;
    }
    const { store, delivery } = this;
    // The SDK always passes an array; a bridge might not. What is not one is nothing to export.
    if (!Array.isArray(spans)) {
      this.diagnostics.once('export-not-array', `export() was passed ${spans === null ? 'null' : typeof spans} instead of an array of spans; nothing exported.`);
      spans = [];
    }
    this.diagnostics.counters.spansReceived += spans.length;
    if (!store || !delivery) {
      this.diagnostics.counters.dropped.not_configured += spans.length;
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('DatadogCIPipelineExporter is not configured (see the message above)') });
      return;
    }
    this.now = Date.now();
    try {
      store.expire(this.now);
    } catch (err) {
      this.internalError('expiring held spans', err);
    }
    // One span at a time: a span that cannot be read, or trips a bug of ours, is counted and
    // reported alone while the rest of the batch goes on.
    for (const raw of spans as unknown[]) this.file(raw, store);
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

  /** Checks one span's shape (span-shape.ts) and files it into the store. Never throws. */
  private file(raw: unknown, store: PendingStore<StoreLevel>): void {
    let span;
    let level;
    try {
      span = admitSpan(raw, this.diagnostics);
      if (!span) return;
      level = this.events!.levelOf(span);
    } catch (err) {
      // A getter or spanContext() that throws, an attribute value String() cannot convert.
      refuse(this.diagnostics, 'unreadable', `a span passed to export() could not be read (${errorText(err)}); it is not sent.`);
      return;
    }
    try {
      store.add(span, level, this.now);
    } catch (err) {
      if (level) this.diagnostics.counters.dropped.invalid++;
      this.internalError('filing a span', err);
    }
  }

  /** A bug of ours must not take the build down: report it (once per kind of error) and go on. */
  private internalError(where: string, err: unknown): void {
    this.diagnostics.once(internalKind(where, err), `internal error while ${where} (please report it): ${errorText(err)}`);
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
    const sends: Array<Promise<boolean>> = [];
    // The flag is cleared synchronously as the loop ends, so work added from then on starts a
    // new run instead of joining one that will not look at it.
    this.pumpLoop = this.drainAll(sends, Infinity, () => {
      this.pumpRunning = false;
    });
    this.pumpDone = this.pumpLoop.then(() => Promise.all(sends)).then(() => undefined);
    return this.pumpDone;
  }

  /**
   * Resolves released work in slices, giving the event loop back in between (a pipeline's
   * arrival can release 100,000 descendants), and hands each slice's events to delivery.
   * Backpressure: while the endpoint keeps up, it waits for delivery rather than outrun it into
   * queue_overflow (in an outage the bounded queue's drop-oldest rule applies instead), until
   * `deadline`. Slices are at most a quarter of the queue, so even two loops at once (a pump
   * and shutdown) stay within it.
   */
  private async drainAll(sends: Array<Promise<boolean>>, deadline: number, onEnd?: () => void): Promise<void> {
    try {
      // Resolving starts in a turn of its own, not in export()'s after filing its spans: each
      // of the three (filing, a slice, encoding a body) is a synchronous stretch of up to ~10 ms
      // on a busy machine, more with a collection in it, and together they were the longest.
      await nextTurn();
      while (this.drainSlice(sends) && Date.now() < deadline) {
        await nextTurn();
        while (!this.troubled && this.diagnostics.counters.queued > this.highWater && this.outstanding.size > 0 && Date.now() < deadline) {
          const oldest = this.outstanding.values().next().value as Promise<boolean>;
          await within(new Promise<void>((resolve) => this.untilSettledOrTrouble(oldest, resolve)), deadline - Date.now());
        }
      }
    } finally {
      // What the run gathered goes out even when it stops at its deadline with work left.
      if (this.readySends === sends) this.sendReady(sends);
      onEnd?.();
    }
  }

  /**
   * Resolves one slice of released work; returns whether work remains. Its events join those of
   * the run's earlier slices, and go to delivery together (one body, see sealAt) once the next
   * slice might not fit beside them, or when the run has nothing left to resolve.
   */
  private drainSlice(sends: Array<Promise<boolean>>): boolean {
    const store = this.store!;
    // Events another run gathered are that run's to wait for: they go out with its sends.
    if (this.readySends !== sends && this.readySends && this.ready.length > 0) this.sendReady(this.readySends);
    this.readySends = sends;
    const readyBefore = this.ready.length;
    this.now = Date.now();
    let more = true;
    try {
      const t0 = performance.now();
      const chunk = Math.min(SLICE_CHUNK, this.slice);
      for (let done = 0; more && done < this.slice; done += chunk) {
        if (done > 0 && performance.now() - t0 > SLICE_MS) break;
        more = store.drain(Math.min(chunk, this.slice - done));
      }
    } catch (err) {
      this.internalError('resolving spans', err);
      more = store.hasWork;
    }
    const ready = this.ready;
    for (let i = this.readyCounted; i < ready.length; i++) this.readyBytes += ready[i]!.bytes;
    this.readyCounted = ready.length;
    // Sealed in bodies of sealAt events (the rest waits for the next slices), near the byte cap,
    // or when the run has nothing left to resolve.
    const n = ready.length;
    // The last slice's events are sealed into a body in the next turn (drainAll comes back, finds
    // no work and sends): resolving and encoding in one turn made one long stretch of them.
    if (!more && n > readyBefore) return true;
    if (!more || (n > 0 && this.readyBytes + (this.readyBytes / n) * this.slice > this.sealBytes)) this.sendReady(sends);
    else if (n >= this.sealAt) this.sendReady(sends, n - (n % this.sealAt));
    return more;
  }

  /** Hands the gathered events (the first `count`) to delivery as one send; its promise joins the run's. */
  private sendReady(sends: Array<Promise<boolean>>, count = this.ready.length): void {
    const events = this.takeReady(count);
    if (events.length === 0) return;
    const sent = this.delivery!.send(events);
    sends.push(sent);
    this.outstanding.add(sent);
    void sent.then(() => this.outstanding.delete(sent));
  }

  private endpointInTrouble(): void {
    this.troubled = true;
    for (const release of [...this.waiting]) release();
  }

  /** Resolves when every event that can be emitted so far has been delivered or has definitively failed (bounded by flushTimeoutMs). */
  async forceFlush(): Promise<void> {
    if (!this.delivery || !this.options) return;
    const deadline = Date.now() + this.options.flushTimeoutMs;
    // Work the pump has yet to hand over counts too: wait for its loop, then for delivery.
    if (this.pumpRunning) await within(this.pumpLoop, deadline - Date.now());
    await this.delivery.flush(Math.max(0, deadline - Date.now()));
  }

  /** Emits what is still held (as far as it can be), delivers within shutdownTimeoutMs, then refuses further exports. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  /** Counters of what came in, went out, and was dropped and why (see the README's "Delivery guarantees"). */
  getCounters(): Counters {
    const c = this.diagnostics.snapshot();
    // Labelled spans only: so that sent + dropped + pending + spooled + queued accounts for every
    // labelled span received (README, "Reading the counters").
    c.pending = this.store?.pendingLabelledCount ?? 0;
    return c;
  }

  /** @internal The live path, or undefined when this exporter is not configured or shut down. */
  [LIVE](): LivePath | undefined {
    const { events, delivery, options } = this;
    if (!events || !delivery || !options) return undefined;
    return {
      diagnostics: this.diagnostics,
      maxEventAgeMs: options.maxEventAgeMs,
      flushTimeoutMs: options.flushTimeoutMs,
      settings: { ...options.given, env: options.env, service: options.service, providerName: options.providerName },
      lineageAt: (span, level, inherited) => events.lineageAt(span, level, inherited),
      levelOf: (span) => {
        const level = events.levelOf(span);
        return level === VOCAB ? undefined : level;
      },
      recognise: (span) => span.attributes[LEVEL_ATTRIBUTE] === undefined && events.levelOf(span) === VOCAB,
      file: (spans) => new Promise<void>((resolve) => this.export(spans, () => resolve())),
      send: (items) => {
        if (this.shutdownPromise) {
          this.diagnostics.drop('shutdown', items.length, 'live-after-shutdown', 'spans that ended after shutdown() were dropped (counted in dropped.shutdown).');
          return Promise.resolve(false);
        }
        const out: ReadyEvent[] = [];
        const now = Date.now();
        for (const it of items) {
          if (it.running) events.buildRunning(it.span, it.level, it.inherited, now, out);
          else {
            this.diagnostics.counters.spansReceived++;
            events.build(it.span, it.level, it.inherited, now, out);
          }
        }
        return out.length > 0 ? delivery.send(out) : Promise.resolve(true);
      },
    };
  }

  private async doShutdown(): Promise<void> {
    const { store, delivery, options } = this;
    if (!store || !delivery || !options) return;
    // One deadline for all of it: resolving what is left counts against shutdownTimeoutMs too.
    const deadline = Date.now() + options.shutdownTimeoutMs;
    // Work already released goes first: orphans are judged by their parents' state, which is
    // only final once that work is resolved.
    await this.drainAll([], deadline);
    try {
      this.now = Date.now();
      store.resolveOrphans();
    } catch (err) {
      this.internalError('resolving orphans at shutdown', err);
    }
    await this.drainAll([], deadline);
    // Past the deadline, what is still unresolved is given up on, and counted.
    store.discardWork();
    await delivery.shutdown(Math.max(0, deadline - Date.now()));
    const summary = this.diagnostics.summary();
    if (summary) this.diagnostics.say(summary);
  }

  private takeReady(count: number): ReadyEvent[] {
    const all = this.ready;
    if (count >= all.length) {
      this.ready = [];
      this.readyBytes = 0;
      this.readyCounted = 0;
      return all;
    }
    this.ready = all.slice(count);
    let bytes = 0;
    for (const e of this.ready) bytes += e.bytes;
    this.readyBytes = bytes;
    this.readyCounted = this.ready.length;
    return all.slice(0, count);
  }
}
