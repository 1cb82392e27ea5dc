// Rebuilds the pipeline → stage → job → step hierarchy from parent span IDs while spans arrive
// children-first, across export() calls, with many traces interleaved.
//
// Every span (labelled or not) becomes a node, in a map per trace ID keyed by span ID (once
// resolved, the map keeps its lineage instead: see Trace). A node's
// lineage (what it inherits from labelled ancestors) is known at once for a pipeline, a trace
// root, or a span whose parent lives in another process; otherwise when its parent resolves.
// Until then it is held, and registered on its parent (a placeholder if the parent has not
// arrived). A node whose lineage is known goes, with its waiting subtree, onto a work stack that
// drain() resolves iteratively (in slices, when the store is deferred), so each span is touched a
// constant number of times: O(1) amortised, no recursion depth limit.
//
// Memory is bounded twice: held spans (cap + age, oldest dropped first, reported), and resolved
// nodes remembered for late children (cap, oldest forgotten first; a child that ends after its
// ancestors were forgotten becomes an orphan).
import type { Level } from '../mapping/fields.js';
import { hrTimeToMs } from '../mapping/time.js';
import { EMPTY_LINEAGE, parentOf, type Lineage, type SpanData } from '../mapping/transform.js';
import { HeldSpan, holdable, holdableRecord, type HeldRecord } from './record.js';

/**
 * A span without `ci.level` that another tool's vocabulary recognises: whether it is an event,
 * and at which level, is decided when its lineage is known (src/vocabularies). Held like a
 * labelled span; resolved with the children that have arrived by then.
 */
export const VOCAB = 'vocab';
export type StoreLevel = Level | typeof VOCAB;

export type EvictReason = 'pending_overflow' | 'pending_expired' | 'orphaned' | 'shutdown';

export interface HierarchyCallbacks<L extends string = Level> {
  /** A labelled span's ancestors are known: map and emit it; return what its descendants inherit. */
  resolve(span: SpanData, level: L, inherited: Lineage, children?: () => SpanData[]): Lineage;
  /** A labelled span leaves the store without being resolved. */
  evict(span: SpanData, level: L, reason: EvictReason): void;
  /** At shutdown, a span found in a loop of parent IDs (reported; the loop resolves as orphans). */
  cycle?(span: SpanData, level: L | undefined): void;
}

export interface HierarchyLimits {
  /** Held spans (waiting for ancestors) at most; the oldest are dropped beyond it. */
  maxPendingSpans: number;
  /** Resolved spans remembered for children that end after their parent. */
  maxRememberedSpans: number;
  /** A held span whose end is older than this is dropped (Datadog would reject it anyway). */
  maxAgeMs: number;
}

/**
 * One trace's spans by span ID; it knows its trace ID, so that its nodes need not each hold it.
 * A span still held or being resolved (or a placeholder for a parent not yet arrived) is a Node;
 * a resolved one is remembered as its lineage alone (what a late child inherits). Most lineages
 * are shared (a step passes on its job's), so a remembered span costs a map entry and three FIFO
 * slots, and its Node dies young. When remembered nodes stayed, every young-generation
 * collection copied and promoted the nodes resolved since the one before (scavenges over a
 * `bench/hotpath.ts` run: 568 ms then, 361 now).
 */
class Trace extends Map<string, Node | Lineage> {
  constructor(readonly traceId: string) {
    super();
  }
}

/**
 * A span (or a placeholder for a parent that has not arrived). A class with every field set in
 * the constructor: all nodes share one hidden class, fields in-object (an object literal grown
 * field by field spills into a separate property array). Held for as long as the build runs, so
 * each field counts: see record.ts for the held span itself.
 */
class Node {
  /**
   * Set while held or being resolved. While held: a HeldSpan, or among many held spans a
   * HeldRecord (record.ts says why), or the span itself when it could not be read.
   */
  span: SpanData | HeldRecord | undefined = undefined;
  /** Labelled level (or VOCAB), if any: the store's L. */
  level: string | undefined = undefined;
  /** Held children waiting for this node's lineage (evicted ones stay until it resolves). */
  waiting: Node[] | undefined = undefined;
  /** How many of `waiting` are still held: lets eviction tidy up in O(1). */
  live = 0;
  /** The node this one waits on: set exactly while held (so `held` needs no field of its own). */
  parentNode: Node | undefined = undefined;
  /**
   * Epoch ms of the span's end (at most its arrival), for the age limit, as whole ms since
   * the store's epoch: a small integer is stored in the field itself, an epoch-ms double would
   * be a heap number of its own.
   */
  endMs: number | undefined = undefined;

  constructor(
    readonly spanId: string,
    /** The map of this node's trace that holds it. */
    readonly trace: Trace,
  ) {}
}

/**
 * A node made by an object literal, with the class's fields in the same order: among many held
 * spans, nodes are made this way, for the reason record.ts gives for records (V8 pretenures a
 * literal's allocation site whose objects survive; not `new` of a class). The class stays for
 * the common case: nodes of a build whose spans arrive about when their pipeline does die
 * young, and made by the literal (then pretenured) they made the CPU path ~70 % slower.
 */
function nodeLiteral(spanId: string, trace: Trace): Node {
  return { span: undefined, level: undefined, waiting: undefined, live: 0, parentNode: undefined, endMs: undefined, spanId, trace };
}

/** A trace map's value is a node (held, being resolved, a placeholder) or a resolved span's lineage (which has no `trace`). */
const isNode = (x: Node | Lineage): x is Node => (x as { trace?: unknown }).trace !== undefined;

/**
 * First-in first-out with removal by marking: arrays with a moving head, compacted now and then.
 * A Map would keep insertion order too, but V8 walks over deleted slots at the front on every
 * `keys().next()`, making "drop the oldest" cost O(size) in a steady state.
 */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  /** The oldest item for which `keep` holds; items before it that fail `keep` are discarded. */
  peek(keep: (item: T) => boolean): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head]!;
      if (keep(item)) return item;
      this.head++;
    }
    this.compact();
    return undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++]!;
    this.compact();
    return item;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Keeps only the items for which `keep` holds, in order. */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.slice(this.head).filter(keep);
    this.head = 0;
  }

  /** Every remaining item, oldest first (including ones a later peek would discard). */
  toArray(): T[] {
    return this.items.slice(this.head);
  }

  private compact(): void {
    if (this.head >= this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * The resolved spans in resolution order: trace, span ID and the lineage remembered, three
 * consecutive entries (no object per entry) of fixed-size chunks. Chunks rather than one array:
 * with 100,000 remembered spans one array grew to 300,000 entries, and every growth copied it
 * whole into newly mapped memory (2 % of a throughput run).
 */
class ResolvedFifo {
  /** Chunks oldest first; the first is read from `head`, the last written at `tail`. */
  private chunks: Array<Array<Trace | string | Lineage | undefined>> = [];
  private head = 0;
  private tail = RESOLVED_CHUNK;

  /** The entry the last shift() removed (fields, not a returned object: no allocation per call). */
  trace: Trace | undefined;
  spanId: string | undefined;
  lineage: Lineage | undefined;

  push(trace: Trace, spanId: string, lineage: Lineage): void {
    if (this.tail === RESOLVED_CHUNK) {
      this.chunks.push(new Array<Trace | string | Lineage | undefined>(RESOLVED_CHUNK));
      this.tail = 0;
    }
    const c = this.chunks[this.chunks.length - 1]!;
    c[this.tail] = trace;
    c[this.tail + 1] = spanId;
    c[this.tail + 2] = lineage;
    this.tail += 3;
  }

  /** Removes the oldest entry into trace/spanId/lineage; false when empty. */
  shift(): boolean {
    const c = this.chunks[0];
    if (c === undefined || (this.chunks.length === 1 && this.head >= this.tail)) return false;
    const i = this.head;
    this.trace = c[i] as Trace;
    this.spanId = c[i + 1] as string;
    this.lineage = c[i + 2] as Lineage;
    this.head = i + 3;
    if (this.head === RESOLVED_CHUNK) {
      this.chunks.shift();
      this.head = 0;
      if (this.chunks.length === 0) this.tail = RESOLVED_CHUNK;
    } else {
      // Cleared at once: the FIFO must not keep a forgotten trace's map alive meanwhile.
      c[i] = c[i + 2] = undefined;
    }
    return true;
  }
}

/** Entries per chunk of ResolvedFifo: 1,024 spans. */
const RESOLVED_CHUNK = 3 * 1024;

/** In the held set (waiting for its parent). */
const isHeld = (n: Node): boolean => n.parentNode !== undefined;

/** Whether the node has its span (held or being resolved), as opposed to a placeholder or a done node. */
const hasSpan = (n: Node): boolean => n.span !== undefined;

/** The node's span as the callbacks read it. */
const spanOf = (n: Node): SpanData | undefined => {
  const s = n.span;
  // Every span the store is given has spanContext() (span-shape.ts); a record has none.
  return s === undefined || typeof (s as SpanData).spanContext === 'function' ? (s as SpanData | undefined) : HeldSpan.view(s as HeldRecord);
};

/**
 * Held spans beyond which a newly held span is kept as a HeldRecord rather than a HeldSpan
 * (record.ts): below it, the spans of a build arrive about when their pipeline does, and die young.
 */
const RECORDS_FROM = 4096;

/** Nodes drain() marks released per span it resolves (see releaseSome). */
const RELEASE_PER_RESOLVE = 8;

/** The children of `node` that arrived and wait for it (a vocabulary reads them: queue spans, a stage's jobs). */
function arrived(node: Node): SpanData[] {
  const out: SpanData[] = [];
  if (node.waiting) for (const c of node.waiting) if (hasSpan(c)) out.push(spanOf(c)!);
  return out;
}

/** L: the levels the store files spans under; the exporter's adds VOCAB (`PendingStore<StoreLevel>`). */
export class PendingStore<L extends string = Level> {
  /** trace ID → span ID → node: the SDK's ID strings are reused, so their hashes are cached. */
  private readonly traces = new Map<string, Trace>();
  /** Held nodes in arrival order (resolved and evicted ones are skipped lazily). */
  private readonly heldOrder = new Fifo<Node>();
  private heldCount = 0;
  /** Of those, the labelled ones: what getCounters().pending reports (unlabelled spans become no event). */
  private heldLabelled = 0;
  /** Resolved spans in resolution order, so the oldest is forgotten first. */
  private readonly resolvedOrder = new ResolvedFifo();
  private resolvedCount = 0;

  /** Node ages are kept in ms since this time (see Node.endMs). */
  private readonly epoch = Date.now();

  /** Nodes whose lineage is known and that drain() has yet to resolve: an explicit stack, no recursion. */
  private readonly work: Node[] = [];
  /** The lineage each entry of `work` inherits (a parallel stack: no pair allocated per span). */
  private readonly workLineage: Lineage[] = [];
  /**
   * Released subtrees whose nodes are still to be marked released (see releaseSome): the walk
   * over 100,000 waiting descendants took 35-50 ms in one go on a loaded machine, so in a
   * deferred store it advances with drain(), ahead of the resolution.
   */
  private readonly releasing: Node[] = [];

  /**
   * @param deferred when true, add() and resolveOrphans() only queue the resolution and the
   *   caller runs drain(); when false (the default) they resolve before returning.
   */
  constructor(
    private readonly limits: HierarchyLimits,
    private readonly callbacks: HierarchyCallbacks<L>,
    private readonly deferred = false,
  ) {}

  /** Spans held, waiting for their ancestors. */
  get pendingCount(): number {
    return this.heldCount;
  }

  /** Labelled spans held, waiting for their ancestors (each will become an event or a drop). */
  get pendingLabelledCount(): number {
    return this.heldLabelled;
  }

  /** `arrival`: epoch ms now (the caller's clock, read once per export() call). */
  add(span: SpanData, level: L | undefined, arrival = Date.now()): void {
    const { traceId, spanId } = span.spanContext();
    let trace = this.traces.get(traceId);
    if (!trace) {
      trace = new Trace(traceId);
      this.traces.set(traceId, trace);
    }
    const known = trace.get(spanId);
    if (known !== undefined && (!isNode(known) || hasSpan(known))) return; // the same span exported twice (resolved, held, being resolved)
    let node = known;
    if (!node) {
      node = this.newNode(spanId, trace);
      trace.set(spanId, node);
    }
    if (level) node.level = level;

    const parent = parentOf(span);
    // A pipeline starts a lineage of its own; a trace root or a span whose parent is in another
    // process has no ancestor to wait for (its links, if any, come from its own attributes).
    if (level === 'pipeline' || !parent || parent.isRemote) {
      node.span = span;
      this.resolveFrom(node, EMPTY_LINEAGE);
      return;
    }
    const up = trace.get(parent.spanId);
    if (up !== undefined && !isNode(up)) {
      node.span = span;
      this.resolveFrom(node, up); // its parent is resolved: `up` is its lineage
      return;
    }
    // A parent node that is in the map is not resolved yet: once resolved, the map holds its lineage.
    let parentNode = up;
    if (!parentNode) {
      parentNode = this.newNode(parent.spanId, trace);
      trace.set(parent.spanId, parentNode);
    }
    // Held: possibly for the whole build. Keep a compact record, not the span object (record.ts).
    if (this.heldCount < RECORDS_FROM) node.span = holdable(span, traceId, spanId, parent.spanId) ?? span;
    else node.span = holdableRecord(span, traceId, spanId, parent.spanId) ?? span;
    node.parentNode = parentNode;
    // Not later than its arrival: a NaN or far-future end must not keep it (and, as expire()
    // stops at the first span not yet too old, everything behind it) from ever expiring.
    const endMs = hrTimeToMs(span.endTime);
    node.endMs = Math.floor(endMs < arrival ? endMs : arrival) - this.epoch;
    (parentNode.waiting ??= []).push(node);
    parentNode.live++;
    this.heldOrder.push(node);
    this.heldCount++;
    if (node.level) this.heldLabelled++;
    // Resolved nodes leave the FIFO only from its head: one span waiting for hours would pin
    // everything behind it. Sweep when most entries are dead (amortised O(1) per span).
    if (this.heldOrder.length > 2 * this.heldCount + 1024) this.heldOrder.retain(isHeld);
    // Not while a release is under way: the oldest held spans may be the ones it is about to
    // release (they have known ancestors now); the cap is enforced again once it is done.
    while (this.heldCount > this.limits.maxPendingSpans && this.releasing.length === 0) {
      this.evictHeld(this.heldOrder.peek(isHeld)!, 'pending_overflow');
    }
  }

  private newNode(spanId: string, trace: Trace): Node {
    return this.heldCount < RECORDS_FROM ? new Node(spanId, trace) : nodeLiteral(spanId, trace);
  }

  /** Drops held spans that ended more than maxAgeMs before `now`. */
  expire(now: number): void {
    // As for the cap (add): a release under way may hold the oldest spans; the next call expires.
    if (this.releasing.length > 0) return;
    const cutoff = now - this.limits.maxAgeMs - this.epoch;
    // Arrival order approximates end order; a few out-of-order spans just wait for the next call.
    for (let node = this.heldOrder.peek(isHeld); node && (node.endMs ?? Infinity) < cutoff; node = this.heldOrder.peek(isHeld)) {
      this.evictHeld(node, 'pending_expired');
    }
  }

  /**
   * At shutdown: ancestors that have not arrived never will. Resolve each held chain from its
   * topmost arrived span as if that span were a root; spans that then have no pipeline link are
   * reported by the resolve callback's validation.
   */
  resolveOrphans(): void {
    const held = this.heldOrder.toArray();
    for (const node of held) {
      if (!isHeld(node)) continue; // resolved meanwhile as part of another chain
      const parent = node.parentNode;
      if (parent && hasSpan(parent)) continue; // its parent is here: resolved via it
      this.resolveFrom(node, EMPTY_LINEAGE);
    }
    // What is still held now waits on a parent that is itself held, and so on up: a chain that
    // never reaches a root is a loop (a span that is its own parent, A → B → A, …). Walk up from
    // each, marking the walk; meeting the current walk's mark again means a loop. Resolve the
    // loop from the node where it closes, as an orphan root: that releases the loop and every
    // span hanging below it. Each node is walked once: linear.
    const walked = new Map<Node, number>();
    let walk = 0;
    for (const node of held) {
      if (!isHeld(node) || walked.has(node)) continue;
      walk++;
      let x: Node | undefined = node;
      while (x !== undefined && isHeld(x) && !walked.has(x)) {
        walked.set(x, walk);
        x = x.parentNode;
      }
      if (!x || !isHeld(x) || walked.get(x) !== walk) continue;
      if (hasSpan(x)) this.callbacks.cycle?.(spanOf(x)!, x.level as L | undefined);
      this.resolveFrom(x, EMPTY_LINEAGE);
    }
  }

  /** Spans whose ancestors are known, waiting for drain() to resolve them (and their subtrees). */
  get hasWork(): boolean {
    return this.work.length > 0 || this.releasing.length > 0;
  }

  /**
   * Resolves up to `budget` spans of pending work, depth first; returns whether work remains.
   * A pipeline's arrival can release 100,000 waiting descendants: a deferred store lets the
   * caller resolve them in slices and give the event loop back in between.
   */
  drain(budget = Infinity): boolean {
    // Marking a node released costs a small fraction of resolving one: the release walk stays
    // well ahead of the resolution.
    this.releaseSome(budget * RELEASE_PER_RESOLVE);
    const work = this.work;
    let done = 0;
    while (work.length > 0 && done < budget) {
      const node = work.pop()!;
      const fromParent = this.workLineage.pop()!;
      const span = spanOf(node);
      if (!span) continue; // evicted while waiting
      done++;
      node.span = undefined;
      node.parentNode = undefined;
      let lineage = fromParent;
      if (node.level) lineage = this.callbacks.resolve(span, node.level as L, fromParent, node.level === VOCAB ? () => arrived(node) : undefined);
      this.remember(node, lineage);
      const waiting = node.waiting;
      if (waiting) {
        node.waiting = undefined;
        node.live = 0;
        for (const child of waiting) {
          if (!hasSpan(child)) continue;
          // Released here if the release walk has not reached it yet; its own subtree is then
          // the walk's to mark (the walk skips nodes no longer held).
          if (isHeld(child)) {
            this.release(child);
            if (child.waiting) this.releasing.push(child);
          }
          work.push(child);
          this.workLineage.push(lineage);
        }
      }
    }
    return work.length > 0 || this.releasing.length > 0;
  }

  /**
   * Gives up on released work not yet resolved (the shutdown deadline passed): each labelled
   * span in it, and below it, is reported through evict(…, 'shutdown').
   */
  discardWork(): void {
    this.releaseSome(Infinity);
    const stack = this.work.slice();
    this.work.length = 0;
    this.workLineage.length = 0;
    while (stack.length > 0) {
      const node = stack.pop()!;
      const span = spanOf(node);
      if (!span) continue;
      node.span = undefined;
      if (node.level) this.callbacks.evict(span, node.level as L, 'shutdown');
      if (node.waiting) for (const child of node.waiting) stack.push(child);
      node.waiting = undefined;
    }
  }

  private resolveFrom(node: Node, inherited: Lineage): void {
    this.release(node);
    this.releasing.push(node);
    this.work.push(node);
    this.workLineage.push(inherited);
    if (!this.deferred) this.drain();
  }

  /**
   * Marks up to `max` nodes of the released subtrees released: the node and everything waiting
   * below it now have known ancestors, even before drain() gets to them, and must not count
   * against the cap nor be evicted (add() and expire() wait while this walk is unfinished).
   * Each node is released once: O(1) amortised per span.
   */
  private releaseSome(max: number): void {
    const stack = this.releasing;
    for (let n = 0; n < max && stack.length > 0; n++) {
      const node = stack.pop()!;
      this.release(node);
      if (node.waiting) for (const child of node.waiting) if (isHeld(child)) stack.push(child);
    }
  }

  /** Its ancestors are known: no longer held, so neither counted against the cap nor evicted. */
  private release(node: Node): void {
    if (!isHeld(node)) return;
    node.parentNode = undefined;
    this.heldCount--;
    if (node.level) this.heldLabelled--;
  }

  /** From now on the span is its lineage in its trace's map (see Trace), until forgotten. */
  private remember(node: Node, lineage: Lineage): void {
    const t = node.trace;
    if (t.get(node.spanId) === node) t.set(node.spanId, lineage);
    this.resolvedOrder.push(t, node.spanId, lineage);
    if (++this.resolvedCount <= this.limits.maxRememberedSpans) return;
    this.resolvedCount--;
    // Children of a resolved node resolve on arrival, so none can be waiting on it: forgetting
    // it loses nothing held, only the lineage of a child that would end after it is forgotten.
    const old = this.resolvedOrder;
    if (old.shift() && old.trace!.get(old.spanId!) === old.lineage) this.drop(old.trace!, old.spanId!);
  }

  private forget(node: Node): void {
    if (node.trace.get(node.spanId) === node) this.drop(node.trace, node.spanId);
  }

  private drop(t: Trace, spanId: string): void {
    t.delete(spanId);
    if (t.size === 0 && this.traces.get(t.traceId) === t) this.traces.delete(t.traceId);
  }

  private evictHeld(node: Node, reason: EvictReason): void {
    const span = spanOf(node)!;
    const parent = node.parentNode;
    this.release(node); // no longer held
    node.span = undefined;
    if (node.level) this.callbacks.evict(span, node.level as L, reason);
    // Its waiting children can no longer resolve through it: they are older, so they were (or
    // will be) evicted first. Forget the node unless something still waits on it.
    if (!node.live) this.forget(node);
    if (!parent) return;
    if (parent.live > 0) parent.live--;
    // A placeholder kept alive only by evicted children goes too.
    if (parent.live === 0 && !hasSpan(parent)) this.forget(parent);
  }
}
