// The live path: a SpanProcessor that learns each span's lineage when it *starts* (from its
// attributes and its parent's lineage), so that a span that ends is converted and sent at once,
// whether or not its ancestors have ended. The exporter alone can only learn a lineage when the
// parent ends; here a two-hour pipeline shows its steps as they finish, and a pipeline or job is
// visible as running as soon as it starts.
//
// Mapping, validation, serialization and delivery are the exporter's (its LIVE entry point):
// this module only keeps lineages, a bounded queue, and the timer that batches like the SDK's
// BatchSpanProcessor.
import type { Context } from '@opentelemetry/api';
import type { Diagnostics } from './diagnostics.js';
import { quote } from './diagnostics.js';
import { within } from './delivery/timers.js';
import { LIVE, type DatadogCIPipelineExporter, type LiveItem, type LivePath } from './exporter.js';
import { LEVEL_ATTRIBUTE, parseLevel, type Level } from './mapping/fields.js';
import { EMPTY_LINEAGE, parentOf, type Lineage } from './mapping/transform.js';
import type { ReadableSpanLike, SpanProcessorLike } from './otel-types.js';

export interface DatadogCIPipelineSpanProcessorOptions {
  /** Longest wait between a span's end and its sending. Default 1000 ms (the SDK's BatchSpanProcessor's 5000 is too slow to watch a build). */
  scheduledDelayMs?: number;
  /** Ended spans built and handed to delivery at once at most; a full batch is sent without waiting. Default 512. */
  maxExportBatchSize?: number;
  /** Ended spans waiting to be sent at most; beyond it new ones are dropped (counted in dropped.queue_overflow). Default 2048. */
  maxQueueSize?: number;
  /** Send a running event when a pipeline or job starts. Default true. */
  runningEvents?: boolean;
  /**
   * Spans whose lineage is kept (open spans, and ended ones until their pipeline ends); beyond
   * it the oldest are forgotten (an open labelled one is counted in dropped.pending_overflow).
   * Default 100,000.
   */
  maxTrackedSpans?: number;
}

/** What the processor knows of one span. */
interface Rec {
  traceId: string;
  /** Its level at start, if labelled. */
  level: Level | undefined;
  /** The level of the nearest labelled span from this one up (itself included): a nested `run`'s default level. */
  nearest: Level | undefined;
  /** What it inherits from its labelled ancestors (for its own event). */
  inherited: Lineage;
  /** What its descendants inherit. */
  lineage: Lineage;
  /** Span ID of the pipeline (or, without one, the local root) whose end releases this record. */
  group: string;
  /** Epoch ms when it was learned: records are in this order, so the age sweep stops at the first young one. */
  learnedMs: number;
  ended: boolean;
  /** Some span started under it: a change of its links after start is worth a message. */
  children: boolean;
  /** Its running event, while not yet settled: the finished event waits for it (order on the wire). */
  running: Promise<unknown> | undefined;
  /**
   * Filed through the exporter's hierarchy store rather than sent live: a span another tool's
   * vocabulary recognises (its level depends on its ancestors, decided when the store resolves
   * it), and everything below one.
   */
  store: boolean;
}

interface Queued extends LiveItem {
  /** The running event this finished one must follow. */
  after?: Promise<unknown> | undefined;
}

const LINK_OF: Record<Level, 'pipeline' | 'stage' | 'job' | undefined> = { pipeline: 'pipeline', stage: 'stage', job: 'job', step: undefined };

/** Processors alive in this process, for envForChildProcess(). */
const registry = new Set<DatadogCIPipelineSpanProcessor>();

/** What a processor learned about a span, for envForChildProcess(). @internal */
export interface LearnedLineage {
  lineage: Lineage;
  nearest: Level | undefined;
  settings: LivePath['settings'];
}

/** @internal The lineage some live processor learned for this span, or undefined. */
export function learnedLineage(traceId: string, spanId: string): LearnedLineage | undefined {
  for (const p of registry) {
    const found = p.lineageOf(traceId, spanId);
    if (found) return found;
  }
  return undefined;
}

export class DatadogCIPipelineSpanProcessor implements SpanProcessorLike<ReadableSpanLike, ReadableSpanLike> {
  private readonly live: LivePath | undefined;
  private readonly delayMs: number;
  private readonly batchSize: number;
  private readonly queueSize: number;
  private readonly runningEvents: boolean;
  private readonly maxTracked: number;
  /** span ID → record, in start order (the oldest first, for the caps). */
  private readonly recs = new Map<string, Rec>();
  /** Group head (pipeline or local root) span ID → ended members, released with the head. */
  private readonly groups = new Map<string, string[]>();
  private queue: Queued[] = [];
  private timer: NodeJS.Timeout | undefined;
  private kicked = false;
  /** Sends not yet settled (running events, finished events waiting for them): forceFlush waits. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** Finished events waiting for their running event, sent at shutdown whatever it became. */
  private readonly deferred = new Set<() => void>();
  /** Ended spans for the exporter's store (see Rec.store). */
  private stored: ReadableSpanLike[] = [];
  private lastSweep = 0;
  private stopped = false;
  private shutdownP: Promise<void> | undefined;

  constructor(
    private readonly exporter: DatadogCIPipelineExporter,
    options: DatadogCIPipelineSpanProcessorOptions = {},
  ) {
    this.live = exporter[LIVE]();
    const num = (v: number | undefined, dflt: number, min: number): number =>
      typeof v === 'number' && Number.isFinite(v) && v >= min ? Math.floor(v) : dflt;
    this.delayMs = num(options.scheduledDelayMs, 1000, 0);
    this.queueSize = num(options.maxQueueSize, 2048, 1);
    this.batchSize = Math.min(num(options.maxExportBatchSize, 512, 1), this.queueSize);
    this.runningEvents = options.runningEvents !== false;
    this.maxTracked = num(options.maxTrackedSpans, 100_000, 1);
    for (const [name, v] of Object.entries(options)) {
      if (typeof v === 'number' && name !== 'runningEvents' && !(Number.isFinite(v) && v >= 0)) {
        this.live?.diagnostics.once(`processor-option:${name}`, `DatadogCIPipelineSpanProcessor: option ${name} must be a non-negative number, got ${quote(v)}; the default is used.`);
      }
    }
    if (this.live) registry.add(this);
  }

  onStart(span: ReadableSpanLike, _parentContext: Context): void {
    const live = this.live;
    if (!live || this.stopped) return;
    try {
      const rec = this.learn(live, span);
      if (this.runningEvents && (rec.level === 'pipeline' || rec.level === 'job')) {
        // Sent at once, not batched: the point is to see the build the moment it starts.
        const sent = live.send([{ span, level: rec.level, inherited: rec.inherited, running: true }]);
        rec.running = sent;
        this.track(sent);
        void sent.then(() => {
          if (rec.running === sent) rec.running = undefined;
        });
      }
    } catch (err) {
      this.internal(live.diagnostics, err);
    }
  }

  /** SDK 3.x calls this before onEnd, while the span can still change: nothing to do yet. */
  onEnding(_span: ReadableSpanLike): void {}

  onEnd(span: ReadableSpanLike): void {
    const live = this.live;
    if (!live || this.stopped) return;
    try {
      const { traceId, spanId } = span.spanContext();
      let rec = this.recs.get(spanId);
      if (rec && rec.traceId !== traceId) rec = undefined;
      // A span that started before this processor was added, or whose record was forgotten
      // (caps): learn it now, from its parent if that is still known.
      rec ??= this.learn(live, span);
      if (rec.store || (span.attributes[LEVEL_ATTRIBUTE] === undefined && live.recognise(span))) {
        this.stored.push(span);
        if (this.stored.length >= this.batchSize) this.kick(live);
        else this.schedule(live);
        this.release(spanId, rec);
        return;
      }
      const level = span.attributes[LEVEL_ATTRIBUTE] === undefined ? undefined : live.levelOf(span);
      if (rec.children) this.checkLinks(live, span, rec, level);
      if (level) {
        const inherited = level === 'pipeline' ? EMPTY_LINEAGE : rec.inherited;
        this.enqueue(live, { span, level, inherited, after: rec.running });
      }
      this.release(spanId, rec);
    } catch (err) {
      this.internal(live.diagnostics, err);
    }
  }

  /** Resolves when every span ended so far is delivered or has definitively failed (within the exporter's flushTimeoutMs). */
  async forceFlush(): Promise<void> {
    const live = this.live;
    if (!live) return;
    this.drainQueue(live);
    // One deadline for both: what this processor sent, then whatever the exporter holds.
    const all = Promise.all([...this.inflight]).then(() => this.exporter.forceFlush());
    await within(all, live.flushTimeoutMs);
  }

  /** Sends what has ended, then shuts the exporter down (its shutdownTimeoutMs bounds delivery). */
  shutdown(): Promise<void> {
    this.shutdownP ??= (async () => {
      const live = this.live;
      registry.delete(this);
      if (live) {
        this.drainQueue(live);
        // Nothing is worth waiting for at the end: finished events go now, running or not.
        for (const send of [...this.deferred]) send();
      }
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      this.recs.clear();
      this.groups.clear();
      await this.exporter.shutdown();
    })();
    return this.shutdownP;
  }

  /** @internal For envForChildProcess(). */
  lineageOf(traceId: string, spanId: string): LearnedLineage | undefined {
    const rec = this.recs.get(spanId);
    if (!rec || rec.traceId !== traceId || !this.live) return undefined;
    return { lineage: rec.lineage, nearest: rec.nearest, settings: this.live.settings };
  }

  private learn(live: LivePath, span: ReadableSpanLike): Rec {
    const { traceId, spanId } = span.spanContext();
    const parent = parentOf(span);
    let parentRec = parent && !parent.isRemote ? this.recs.get(parent.spanId) : undefined;
    if (parentRec && parentRec.traceId !== traceId) parentRec = undefined;
    if (parentRec) parentRec.children = true;
    const level = parseLevel(span.attributes[LEVEL_ATTRIBUTE]);
    // The store's rule: a pipeline starts a lineage of its own; so does a span whose parent is
    // in another process or unknown (its explicit ci.pipeline_* attributes fill the links).
    const inherited = level === 'pipeline' || !parentRec ? EMPTY_LINEAGE : parentRec.lineage;
    const lineage = level ? live.lineageAt(span, level, inherited) : inherited;
    const head = level === 'pipeline' || !parentRec;
    const store = parentRec?.store === true || (!level && span.attributes[LEVEL_ATTRIBUTE] === undefined && live.recognise(span));
    const now = Date.now();
    const rec: Rec = {
      traceId,
      level,
      nearest: level ?? parentRec?.nearest,
      inherited,
      lineage,
      group: head ? spanId : parentRec!.group,
      learnedMs: now,
      ended: false,
      children: false,
      running: undefined,
      store,
    };
    if (head) this.groups.set(spanId, []);
    this.recs.delete(spanId);
    this.recs.set(spanId, rec);
    this.bound(live, now);
    return rec;
  }

  /** A span ended: what it taught is kept for late children until its pipeline (group) ends. */
  private release(spanId: string, rec: Rec): void {
    rec.ended = true;
    if (rec.group === spanId) {
      const members = this.groups.get(spanId);
      if (members) for (const id of members) if (this.recs.get(id)?.ended) this.recs.delete(id);
      this.groups.delete(spanId);
      this.recs.delete(spanId);
      return;
    }
    const members = this.groups.get(rec.group);
    if (members) members.push(spanId);
    else this.recs.delete(spanId);
  }

  /** The caps: a count, and the age past which Datadog would refuse the events anyway. */
  private bound(live: LivePath, now: number): void {
    while (this.recs.size > this.maxTracked) {
      const oldest = this.recs.entries().next().value as [string, Rec];
      this.forget(live, oldest[0], oldest[1], 'pending_overflow');
    }
    if (now - this.lastSweep < Math.min(60_000, live.maxEventAgeMs / 4)) return;
    this.lastSweep = now;
    const limit = now - live.maxEventAgeMs;
    for (const [id, rec] of this.recs) {
      if (rec.learnedMs >= limit) break;
      this.forget(live, id, rec, 'pending_expired');
    }
  }

  private forget(live: LivePath, id: string, rec: Rec, reason: 'pending_overflow' | 'pending_expired'): void {
    this.recs.delete(id);
    if (rec.group === id) this.groups.delete(id);
    if (rec.ended || !rec.level) return;
    const why =
      reason === 'pending_overflow'
        ? `more than maxTrackedSpans (${this.maxTracked}) spans were open; the oldest open ${rec.level}'s lineage was forgotten (its children started from now on are not linked to it). Raise maxTrackedSpans or end your spans.`
        : `an open ${rec.level} is older than maxEventAgeMs (${live.maxEventAgeMs} ms); its lineage was forgotten.`;
    live.diagnostics.drop(reason, 1, `live:${reason}`, `DatadogCIPipelineSpanProcessor: ${why} (reported once; see getCounters().dropped)`);
  }

  /**
   * Link-deciding attributes (ci.level, ci.name, ci.id, ci.unique_id) are read at start: say
   * once when one changed since, as descendants already carry the old value.
   */
  private checkLinks(live: LivePath, span: ReadableSpanLike, rec: Rec, level: Level | undefined): void {
    let attribute: string | undefined;
    if (level !== rec.level) attribute = 'ci.level';
    else if (level && LINK_OF[level]) {
      const key = LINK_OF[level]!;
      const now = live.lineageAt(span, level, level === 'pipeline' ? EMPTY_LINEAGE : rec.inherited)[key] as { name: string } | undefined;
      const then = rec.lineage[key] as { name: string } | undefined;
      const idOf = (x: unknown): string | undefined => (x as { unique_id?: string; id?: string } | undefined)?.unique_id ?? (x as { id?: string } | undefined)?.id;
      if (now?.name !== then?.name) attribute = 'ci.name (or the span name)';
      else if (idOf(now) !== idOf(then)) attribute = level === 'pipeline' ? 'ci.unique_id (or ci.id)' : 'ci.id';
    }
    if (!attribute) return;
    const { traceId, spanId } = span.spanContext();
    live.diagnostics.once(
      `live-link-changed:${attribute}`,
      `${rec.level ?? level ?? 'span'} ${quote(span.name)} (trace ${traceId}, span ${spanId}): ${attribute} changed after the span started; its descendants were already sent with the value it had at start. Set link attributes when starting the span (startSpan's attributes). (reported once)`,
    );
  }

  private enqueue(live: LivePath, item: Queued): void {
    if (this.queue.length >= this.queueSize) {
      live.diagnostics.drop(
        'queue_overflow',
        1,
        'live-queue-overflow',
        `DatadogCIPipelineSpanProcessor: more than maxQueueSize (${this.queueSize}) ended spans were waiting to be sent; new ones are dropped. Raise maxQueueSize. (reported once; see getCounters().dropped)`,
      );
      return;
    }
    this.queue.push(item);
    if (this.queue.length >= this.batchSize) this.kick(live);
    else this.schedule(live);
  }

  /** The next batch goes within scheduledDelayMs. */
  private schedule(live: LivePath): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.exportBatch(live);
    }, this.delayMs);
    this.timer.unref();
  }

  /** Spans for the exporter's store (see Rec.store), handed over in one export() call. */
  private fileStored(live: LivePath): void {
    if (this.stored.length === 0) return;
    const spans = this.stored;
    this.stored = [];
    this.track(live.file(spans));
  }

  /** A full batch: sent on the next turn, not inside the host's span.end(). */
  private kick(live: LivePath): void {
    if (this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.exportBatch(live);
    }).unref();
  }

  /** Sends one batch; what remains goes on the next turn (a long queue never stalls the loop). */
  private exportBatch(live: LivePath): void {
    if (this.stopped) return;
    try {
      this.fileStored(live);
      const batch = this.queue.length <= this.batchSize ? this.queue : this.queue.slice(0, this.batchSize);
      this.queue = batch === this.queue ? [] : this.queue.slice(this.batchSize);
      this.send(live, batch);
    } catch (err) {
      this.internal(live.diagnostics, err);
    }
    if (this.queue.length > 0) this.kick(live);
    else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private drainQueue(live: LivePath): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.fileStored(live);
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += this.batchSize) this.send(live, all.slice(i, i + this.batchSize));
  }

  private send(live: LivePath, batch: Queued[]): void {
    const now: LiveItem[] = [];
    for (const item of batch) {
      if (!item.after) now.push(item);
      else this.defer(live, item, item.after);
    }
    if (now.length > 0) this.track(live.send(now));
  }

  /** A finished event whose running event is still on its way goes after it. */
  private defer(live: LivePath, item: Queued, after: Promise<unknown>): void {
    let done = false;
    const go = (): void => {
      if (done) return;
      done = true;
      this.deferred.delete(go);
      this.track(live.send([{ span: item.span, level: item.level, inherited: item.inherited }]));
    };
    this.deferred.add(go);
    this.track(after.then(go, go));
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.then(
      () => this.inflight.delete(p),
      () => this.inflight.delete(p),
    );
  }

  private internal(diagnostics: Diagnostics, err: unknown): void {
    diagnostics.once('live-internal', `DatadogCIPipelineSpanProcessor: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  }
}
