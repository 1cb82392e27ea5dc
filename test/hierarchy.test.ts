// The PendingStore driven directly with plain span-like objects: arrival orders a BatchSpanProcessor
// cannot be made to produce on demand (exact permutations, duplicates, spans older than the age
// limit, a pipeline that never comes), bounds on memory, and the cost of a 100,000-step pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { PendingStore, type EvictReason, type HierarchyLimits } from '../src/hierarchy/pending-store.js';
import type { Level } from '../src/mapping/fields.js';
import type { Lineage, SpanData } from '../src/mapping/transform.js';

const NOW = Date.now();
const HOUR = 3_600_000;
let traceSeq = 0;

interface Made {
  span: SpanData;
  level: Level | undefined;
}

/** One trace's spans, by name; parents are named, IDs are assigned in order. */
class TraceBuilder {
  readonly traceId = (++traceSeq).toString(16).padStart(32, 'a');
  private seq = 0;
  readonly spans = new Map<string, Made>();

  add(name: string, level: Level | undefined, parent?: string | { remote: string }, o: { endMs?: number; spanId?: string } = {}): this {
    assert.ok(!this.spans.has(name), `duplicate name ${name}`);
    const spanId = o.spanId ?? (++this.seq).toString(16).padStart(16, '0');
    let parentSpanContext: SpanData['parentSpanContext'];
    if (typeof parent === 'string') {
      const p = this.spans.get(parent);
      assert.ok(p, `parent ${parent} must be added first`);
      parentSpanContext = { spanId: p.span.spanContext().spanId, isRemote: false };
    } else if (parent) {
      parentSpanContext = { spanId: parent.remote, isRemote: true };
    }
    const endMs = o.endMs ?? NOW;
    const traceId = this.traceId;
    const span: SpanData = {
      name,
      spanContext: () => ({ traceId, spanId }),
      parentSpanContext,
      startTime: [Math.floor((endMs - 1000) / 1000), 0],
      endTime: [Math.floor(endMs / 1000), (endMs % 1000) * 1e6],
      status: { code: SpanStatusCode.UNSET },
      attributes: level ? { 'ci.level': level } : {},
      events: [],
      resource: { attributes: {} },
    };
    this.spans.set(name, { span, level });
    return this;
  }

  get(name: string): Made {
    const m = this.spans.get(name);
    assert.ok(m, name);
    return m;
  }
}

interface Resolution {
  name: string;
  level: Level;
  /** pipeline/stage/job names inherited, e.g. "p/s/j"; "" for none. */
  path: string;
}

/** A store whose callbacks record what happened and compute lineage the way the mapping does. */
function recordingStore(limits: Partial<HierarchyLimits> = {}) {
  const resolved: Resolution[] = [];
  const evicted: Array<{ name: string; level: Level; reason: EvictReason }> = [];
  const store = new PendingStore(
    { maxPendingSpans: 10_000, maxRememberedSpans: 10_000, maxAgeMs: 18 * HOUR, ...limits },
    {
      resolve(span, level, inherited) {
        resolved.push({ name: span.name, level, path: pathOf(inherited) });
        return lineageOf(span.name, level, inherited);
      },
      evict(span, level, reason) {
        evicted.push({ name: span.name, level, reason });
      },
    },
  );
  const feed = (t: TraceBuilder, ...names: string[]) => {
    for (const n of names) {
      const m = t.get(n);
      store.add(m.span, m.level);
    }
  };
  return { store, resolved, evicted, feed, names: () => resolved.map((r) => r.name) };
}

function lineageOf(name: string, level: Level, inherited: Lineage): Lineage {
  const l: Lineage = { ...inherited };
  if (level === 'pipeline') return { pipeline: { unique_id: name, name } };
  if (level === 'stage') {
    l.stage = { id: name, name };
    delete l.job;
  }
  if (level === 'job') l.job = { id: name, name };
  return l;
}

function pathOf(l: Lineage): string {
  return [l.pipeline?.name, l.stage?.name, l.job?.name].filter((x) => x !== undefined).join('/');
}

/** p → s → j → st, with unlabelled spans where asked. */
function classic(opts: { between?: boolean } = {}): TraceBuilder {
  const t = new TraceBuilder().add('p', 'pipeline');
  if (opts.between) {
    t.add('http', undefined, 'p').add('s', 'stage', 'http').add('j', 'job', 's').add('spawn', undefined, 'j').add('phase', undefined, 'spawn');
    t.add('st', 'step', 'phase');
  } else {
    t.add('s', 'stage', 'p').add('j', 'job', 's').add('st', 'step', 'j');
  }
  return t;
}

/** Deterministic PRNG so a failing permutation can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('children first: nothing is emitted until the pipeline arrives, then everything, top down', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic();
  feed(t, 'st');
  feed(t, 'j');
  feed(t, 's');
  assert.equal(resolved.length, 0);
  assert.equal(store.pendingCount, 3);
  feed(t, 'p');
  assert.deepEqual(resolved, [
    { name: 'p', level: 'pipeline', path: '' },
    { name: 's', level: 'stage', path: 'p' },
    { name: 'j', level: 'job', path: 'p/s' },
    { name: 'st', level: 'step', path: 'p/s/j' },
  ]);
  assert.equal(store.pendingCount, 0);
});

test('parents first: each span is emitted as it arrives', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic();
  feed(t, 'p');
  assert.equal(resolved.length, 1);
  feed(t, 's', 'j');
  assert.equal(resolved.length, 3);
  feed(t, 'st');
  assert.deepEqual(
    resolved.map((r) => r.path),
    ['', 'p', 'p/s', 'p/s/j'],
  );
  assert.equal(store.pendingCount, 0);
});

test('any arrival order gives every labelled span exactly once, with its ancestors (200 seeded permutations)', () => {
  const t = new TraceBuilder().add('p', 'pipeline').add('wrapper', undefined, 'p');
  const expected = new Map<string, string>([['p', '']]);
  for (let s = 0; s < 3; s++) {
    t.add(`s${s}`, 'stage', s === 0 ? 'wrapper' : 'p');
    expected.set(`s${s}`, 'p');
    for (let j = 0; j < 3; j++) {
      t.add(`s${s}j${j}`, 'job', `s${s}`).add(`s${s}j${j}sh`, undefined, `s${s}j${j}`);
      expected.set(`s${s}j${j}`, `p/s${s}`);
      for (let k = 0; k < 3; k++) {
        t.add(`s${s}j${j}k${k}`, 'step', k === 0 ? `s${s}j${j}sh` : `s${s}j${j}`);
        expected.set(`s${s}j${j}k${k}`, `p/s${s}/s${s}j${j}`);
      }
    }
    t.add(`s${s}-direct-step`, 'step', `s${s}`);
    expected.set(`s${s}-direct-step`, `p/s${s}`);
  }
  t.add('loose-job', 'job', 'p').add('loose-step', 'step', 'loose-job');
  expected.set('loose-job', 'p').set('loose-step', 'p/loose-job');

  const all = [...t.spans.keys()];
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = mulberry32(seed);
    const order = [...all];
    for (let i = order.length - 1; i > 0; i--) {
      const k = Math.floor(rnd() * (i + 1));
      [order[i], order[k]] = [order[k]!, order[i]!];
    }
    const { store, resolved, feed } = recordingStore();
    feed(t, ...order);
    const got = new Map(resolved.map((r) => [r.name, r.path]));
    assert.equal(resolved.length, expected.size, `seed ${seed}: ${resolved.length} resolutions`);
    assert.deepEqual(got, expected, `seed ${seed}, order ${order.join(',')}`);
    assert.equal(store.pendingCount, 0, `seed ${seed}`);
  }
});

test('unlabelled spans in between are walked through and never emitted', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic({ between: true });
  feed(t, 'st', 'phase', 'spawn', 'j', 's', 'http');
  assert.equal(resolved.length, 0);
  assert.equal(store.pendingCount, 6);
  feed(t, 'p');
  assert.deepEqual(
    resolved.map((r) => `${r.name}:${r.path}`),
    ['p:', 's:p', 'j:p/s', 'st:p/s/j'],
  );
  assert.equal(store.pendingCount, 0);
});

test('an unlabelled span that ends after its labelled parent still releases the child waiting on it', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic({ between: true });
  // A child process span that outlives the job span (detached), and the step inside it.
  feed(t, 'st', 'j', 's', 'http', 'p');
  assert.deepEqual(resolved.map((r) => r.name), ['p', 's', 'j']);
  assert.equal(store.pendingCount, 1);
  feed(t, 'phase');
  assert.equal(resolved.length, 3);
  feed(t, 'spawn');
  assert.deepEqual(resolved.at(-1), { name: 'st', level: 'step', path: 'p/s/j' });
  assert.equal(store.pendingCount, 0);
});

test('a late child of an already resolved parent is resolved at once, with the parent\'s lineage', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic();
  feed(t, 'j', 's', 'p');
  assert.equal(resolved.length, 3);
  feed(t, 'st');
  assert.deepEqual(resolved.at(-1), { name: 'st', level: 'step', path: 'p/s/j' });
  assert.equal(store.pendingCount, 0);
});

test('a deep chain (30,000 unlabelled spans between job and step) resolves without recursion, either arrival order', () => {
  // Far deeper than a recursive walk survives (V8 overflows at about 10,000 frames).
  const DEPTH = 30_000;
  const build = () => {
    const t = new TraceBuilder().add('p', 'pipeline').add('s', 'stage', 'p').add('j', 'job', 's');
    let parent = 'j';
    for (let i = 0; i < DEPTH; i++) {
      t.add(`u${i}`, undefined, parent);
      parent = `u${i}`;
    }
    return t.add('st', 'step', parent);
  };
  const t = build();
  const names = [...t.spans.keys()];

  // Room to remember the whole chain: this test is about depth, not about the memory bounds.
  const limits = { maxPendingSpans: 100_000, maxRememberedSpans: 100_000 };
  const childrenFirst = recordingStore(limits);
  childrenFirst.feed(t, ...[...names].reverse());
  assert.deepEqual(childrenFirst.resolved.at(-1), { name: 'st', level: 'step', path: 'p/s/j' });
  assert.equal(childrenFirst.resolved.length, 4);
  assert.equal(childrenFirst.store.pendingCount, 0);

  const parentsFirst = recordingStore(limits);
  parentsFirst.feed(t, ...names);
  assert.deepEqual(parentsFirst.resolved.at(-1), { name: 'st', level: 'step', path: 'p/s/j' });
  assert.equal(parentsFirst.store.pendingCount, 0);
});

test('spans of different traces with the same span IDs never link to each other', () => {
  const { store, resolved, feed } = recordingStore();
  const a = new TraceBuilder().add('A', 'pipeline').add('A-job', 'job', 'A');
  const b = new TraceBuilder().add('B', 'pipeline').add('B-job', 'job', 'B');
  assert.equal(a.get('A-job').span.spanContext().spanId, b.get('B-job').span.spanContext().spanId);
  feed(a, 'A-job');
  feed(b, 'B-job');
  feed(b, 'B');
  assert.deepEqual(
    resolved.map((r) => `${r.name}:${r.path}`),
    ['B:', 'B-job:B'],
  );
  feed(a, 'A');
  assert.deepEqual(
    resolved.map((r) => `${r.name}:${r.path}`),
    ['B:', 'B-job:B', 'A:', 'A-job:A'],
  );
  assert.equal(store.pendingCount, 0);
});

test('a span whose parent is remote (another process) resolves at once, with nothing inherited', () => {
  const { store, resolved, feed } = recordingStore();
  const t = new TraceBuilder().add('remote-job', 'job', { remote: 'ffffffffffffffff' }).add('its-step', 'step', 'remote-job');
  feed(t, 'its-step');
  assert.equal(resolved.length, 0);
  feed(t, 'remote-job');
  assert.deepEqual(resolved, [
    { name: 'remote-job', level: 'job', path: '' },
    { name: 'its-step', level: 'step', path: 'remote-job' },
  ]);
  assert.equal(store.pendingCount, 0);
});

test('a pipeline nested under another span starts its own lineage', () => {
  const { resolved, feed } = recordingStore();
  const t = new TraceBuilder()
    .add('outer', 'pipeline')
    .add('outer-job', 'job', 'outer')
    .add('inner', 'pipeline', 'outer-job')
    .add('inner-job', 'job', 'inner');
  feed(t, 'inner-job', 'inner', 'outer-job', 'outer');
  assert.deepEqual(
    resolved.map((r) => `${r.name}:${r.path}`),
    ['inner:', 'inner-job:inner', 'outer:', 'outer-job:outer'],
  );
});

test('duplicates: a span exported twice (held, resolved, or as an equal copy) is emitted once', () => {
  const { store, resolved, feed } = recordingStore();
  const t = classic();
  feed(t, 'st', 'st', 'j');
  assert.equal(store.pendingCount, 2);
  feed(t, 's', 'p');
  feed(t, 'p', 's', 'st');
  // A structurally equal copy, as a second exporter pass or a retrying processor would hand over.
  const copy = { ...t.get('j').span };
  store.add(copy, 'job');
  assert.deepEqual(resolved.map((r) => r.name), ['p', 's', 'j', 'st']);
  assert.equal(store.pendingCount, 0);
});

test('cap: beyond maxPendingSpans the oldest held spans are evicted first, each reported once', () => {
  const { store, resolved, evicted, feed } = recordingStore({ maxPendingSpans: 3 });
  const t = new TraceBuilder().add('p', 'pipeline').add('j', 'job', 'p');
  for (let i = 1; i <= 5; i++) t.add(`st${i}`, 'step', 'j');
  feed(t, 'st1', 'st2', 'st3');
  assert.equal(evicted.length, 0, JSON.stringify(evicted));
  feed(t, 'st4');
  assert.deepEqual(evicted, [{ name: 'st1', level: 'step', reason: 'pending_overflow' }]);
  feed(t, 'st5');
  assert.deepEqual(
    evicted.map((e) => e.name),
    ['st1', 'st2'],
  );
  assert.equal(store.pendingCount, 3);
  feed(t, 'j');
  // j is held now: the cap takes the oldest, st3.
  assert.deepEqual(
    evicted.map((e) => e.name),
    ['st1', 'st2', 'st3'],
  );
  feed(t, 'p');
  // Siblings come out in no particular order.
  assert.deepEqual(resolved.map((r) => r.name).sort(), ['j', 'p', 'st4', 'st5']);
  assert.equal(store.pendingCount, 0);
  assert.equal(evicted.length, 3);
  assert.ok(evicted.every((e) => e.reason === 'pending_overflow'));
});

test('cap: held unlabelled spans count towards the cap but are evicted without a report', () => {
  const { store, evicted, feed } = recordingStore({ maxPendingSpans: 2 });
  const t = new TraceBuilder().add('p', 'pipeline').add('j', 'job', 'p').add('u', undefined, 'j').add('st', 'step', 'j').add('st2', 'step', 'j');
  feed(t, 'u', 'st', 'st2');
  assert.equal(store.pendingCount, 2);
  assert.equal(evicted.length, 0, JSON.stringify(evicted));
});

test('cap: evictions across interleaved traces follow arrival order, not trace', () => {
  const { evicted, resolved, store } = recordingStore({ maxPendingSpans: 2 });
  const a = new TraceBuilder().add('A', 'pipeline').add('a1', 'job', 'A').add('a2', 'job', 'A');
  const b = new TraceBuilder().add('B', 'pipeline').add('b1', 'job', 'B');
  const add = (t: TraceBuilder, n: string) => store.add(t.get(n).span, t.get(n).level);
  add(a, 'a1');
  add(b, 'b1');
  add(a, 'a2');
  assert.deepEqual(
    evicted.map((e) => e.name),
    ['a1'],
  );
  add(b, 'B');
  add(a, 'A');
  assert.deepEqual(resolved.map((r) => r.name), ['B', 'b1', 'A', 'a2']);
});

test('age: held spans that ended more than maxAgeMs ago are evicted, oldest first, once', () => {
  const { store, resolved, evicted, feed } = recordingStore({ maxAgeMs: 1_000 });
  const T = NOW - 10_000;
  const t = new TraceBuilder()
    .add('p', 'pipeline', undefined, { endMs: T + 9_000 })
    .add('j', 'job', 'p', { endMs: T + 8_000 })
    .add('old', 'step', 'j', { endMs: T })
    .add('older-ish', 'step', 'j', { endMs: T + 100 })
    .add('young', 'step', 'j', { endMs: T + 5_000 });
  feed(t, 'old', 'older-ish', 'young');
  store.expire(T + 500); // nothing is 1 s old yet
  assert.equal(evicted.length, 0, JSON.stringify(evicted));
  store.expire(T + 1_050);
  assert.deepEqual(evicted, [{ name: 'old', level: 'step', reason: 'pending_expired' }]);
  store.expire(T + 1_200);
  store.expire(T + 1_200);
  assert.deepEqual(
    evicted.map((e) => e.name),
    ['old', 'older-ish'],
  );
  assert.equal(store.pendingCount, 1);
  feed(t, 'j', 'p');
  assert.deepEqual(resolved.map((r) => r.name), ['p', 'j', 'young']);
  assert.equal(store.pendingCount, 0);
});

test('shutdown: orphans are resolved from their topmost arrived ancestor, with nothing inherited above it', () => {
  const { store, resolved, evicted, feed } = recordingStore();
  const t = classic({ between: true });
  const other = new TraceBuilder().add('P2', 'pipeline').add('lonely-job', 'job', 'P2').add('lonely-step', 'step', 'lonely-job');
  // The pipeline spans never arrive (the build was killed), nor does "http" above the stage.
  feed(t, 'st', 'phase', 'spawn', 'j', 's');
  feed(other, 'lonely-step', 'lonely-job');
  assert.equal(store.pendingCount, 7);
  store.resolveOrphans();
  assert.deepEqual(
    resolved.map((r) => `${r.name}:${r.path}`).sort(),
    ['j:s', 'lonely-job:', 'lonely-step:lonely-job', 's:', 'st:s/j'],
  );
  assert.equal(evicted.length, 0, JSON.stringify(evicted));
  assert.equal(store.pendingCount, 0);
  // Nothing is emitted twice if the ancestors turn up after all.
  feed(t, 'http', 'p');
  assert.equal(resolved.filter((r) => r.name !== 'p').length, 5);
});

test('shutdown: a held span whose parent was evicted is resolved as an orphan, not kept forever', () => {
  const { store, resolved, evicted, feed } = recordingStore({ maxPendingSpans: 2 });
  const t = classic();
  // Unusual order (parent before child while both wait) so the parent is the oldest held span.
  feed(t, 'j', 'st', 's');
  assert.deepEqual(
    evicted.map((e) => e.name),
    ['j'],
  );
  feed(t, 'p');
  assert.deepEqual(resolved.map((r) => r.name), ['p', 's']);
  assert.equal(store.pendingCount, 1);
  store.resolveOrphans();
  assert.deepEqual(resolved.at(-1), { name: 'st', level: 'step', path: '' });
  assert.equal(store.pendingCount, 0);
});

test('remembered resolved spans are bounded: past maxRememberedSpans the oldest are forgotten', () => {
  const { store, resolved, feed } = recordingStore({ maxRememberedSpans: 2 });
  const t = new TraceBuilder().add('p', 'pipeline').add('j1', 'job', 'p').add('j2', 'job', 'p').add('late', 'step', 'p');
  feed(t, 'p', 'j1', 'j2');
  assert.equal(resolved.length, 3);
  // p was forgotten: its late child can only wait, then be reported as an orphan at shutdown.
  feed(t, 'late');
  assert.equal(store.pendingCount, 1);
  store.resolveOrphans();
  assert.deepEqual(resolved.at(-1), { name: 'late', level: 'step', path: '' });
});

test('remembered resolved spans past several thousand: exactly the last maxRememberedSpans are kept, oldest forgotten first', () => {
  // Enough for the FIFO of resolved spans to span several of its chunks (1,024 spans each).
  const keep = 2_500;
  const jobs = 6_000;
  const { store, resolved, feed } = recordingStore({ maxRememberedSpans: keep });
  const t = new TraceBuilder().add('p', 'pipeline');
  for (let i = 0; i < jobs; i++) t.add(`j${i}`, 'job', 'p').add(`late${i}`, 'step', `j${i}`);
  for (let i = 0; i < jobs; i++) feed(t, `j${i}`);
  feed(t, 'p');
  const order = resolved.map((r) => r.name);
  assert.equal(order.length, 1 + jobs);
  // Remembered: the last `keep` resolved. Each late child resolved is remembered in turn and
  // forgets the oldest, so the oldest remembered is probed first.
  const probe = (job: string): boolean => {
    const before = resolved.length;
    feed(t, job.replace('j', 'late'));
    return resolved.length > before;
  };
  const oldest = order[order.length - keep]!;
  assert.equal(probe(oldest), true, `the oldest job remembered (${oldest}) still gives its late child a lineage`);
  assert.equal(resolved.at(-1)!.path, `p/${oldest}`);
  assert.equal(probe(order[order.length - keep - 1]!), false, 'the job resolved before it was forgotten: its late child waits');
  assert.equal(probe(order[1]!), false);
  assert.equal(probe(order.at(-1)!), true);
  assert.equal(resolved.at(-1)!.path, `p/${order.at(-1)}`);
  assert.equal(store.pendingCount, 2);
});

// ---------------------------------------------------------------------------------------------
// Cost
// ---------------------------------------------------------------------------------------------

/** p → s → j → n steps, fed children first in export()-sized batches with expire() before each. */
function hugePipeline(n: number) {
  const t = new TraceBuilder().add('p', 'pipeline').add('s', 'stage', 'p').add('j', 'job', 's');
  for (let i = 0; i < n; i++) t.add(`st${i}`, 'step', 'j');
  const order: Made[] = [];
  for (let i = 0; i < n; i++) order.push(t.get(`st${i}`));
  order.push(t.get('j'), t.get('s'), t.get('p'));
  return order;
}

function runHuge(order: Made[]) {
  let resolvedCount = 0;
  let evictedCount = 0;
  let lastPath = '';
  let stepsWithFullPath = 0;
  const store = new PendingStore(
    { maxPendingSpans: 200_000, maxRememberedSpans: 100_000, maxAgeMs: 18 * HOUR },
    {
      resolve(span, level, inherited) {
        resolvedCount++;
        lastPath = pathOf(inherited);
        if (level === 'step' && lastPath === 'p/s/j') stepsWithFullPath++;
        return lineageOf(span.name, level, inherited);
      },
      evict() {
        evictedCount++;
      },
    },
  );
  let pendingBeforePipeline = 0;
  for (let i = 0; i < order.length; i += 512) {
    store.expire(NOW);
    const end = Math.min(order.length, i + 512);
    for (let k = i; k < end; k++) {
      if (k === order.length - 1) pendingBeforePipeline = store.pendingCount;
      store.add(order[k]!.span, order[k]!.level);
    }
  }
  return { resolvedCount, evictedCount, stepsWithFullPath, pendingBeforePipeline, pendingAfter: store.pendingCount };
}

/**
 * Counts the elementary operations of `fn`: Map/Set reads and writes, iterator steps, and the
 * elements that linear Array methods walk. A quadratic algorithm cannot hide from this count the
 * way it can hide in a fast machine's timings.
 */
function countWork(fn: () => void): number {
  let work = 0;
  type Patch = [object, PropertyKey, unknown];
  const patches: Patch[] = [];
  const patch = (obj: object, key: PropertyKey, make: (orig: (...a: unknown[]) => unknown) => (...a: unknown[]) => unknown) => {
    const orig = (obj as Record<PropertyKey, unknown>)[key] as (...a: unknown[]) => unknown;
    patches.push([obj, key, orig]);
    Object.defineProperty(obj, key, { value: make(orig), configurable: true, writable: true });
  };
  const countingIterator = (it: Iterator<unknown>): IterableIterator<unknown> => ({
    next: () => {
      work++;
      return it.next();
    },
    [Symbol.iterator]() {
      return this;
    },
  });
  for (const proto of [Map.prototype, Set.prototype]) {
    for (const k of ['get', 'set', 'has', 'delete', 'add']) {
      if (!(k in proto)) continue;
      patch(proto, k, (orig) =>
        function (this: unknown, ...a: unknown[]) {
          work++;
          return orig.apply(this, a);
        },
      );
    }
    for (const k of ['values', 'keys', 'entries', Symbol.iterator]) {
      patch(proto, k, (orig) =>
        function (this: unknown) {
          return countingIterator(orig.call(this) as Iterator<unknown>);
        },
      );
    }
  }
  patch(Array.prototype, Symbol.iterator, (orig) =>
    function (this: unknown) {
      return countingIterator(orig.call(this) as Iterator<unknown>);
    },
  );
  for (const k of ['push', 'pop']) {
    patch(Array.prototype, k, (orig) =>
      function (this: unknown, ...a: unknown[]) {
        work++;
        return orig.apply(this, a);
      },
    );
  }
  for (const k of ['shift', 'unshift', 'splice', 'indexOf', 'lastIndexOf', 'includes', 'filter', 'find', 'findIndex', 'some', 'every', 'map', 'forEach', 'slice', 'concat', 'reduce', 'sort']) {
    patch(Array.prototype, k, (orig) =>
      function (this: unknown[], ...a: unknown[]) {
        work += 1 + this.length;
        return orig.apply(this, a);
      },
    );
  }
  try {
    fn();
  } finally {
    for (const [obj, key, orig] of patches.reverse()) Object.defineProperty(obj, key, { value: orig, configurable: true, writable: true });
  }
  return work;
}

let huge: Made[] | undefined;
const hugeOrder = (): Made[] => (huge ??= hugePipeline(100_000));

test('a 100,000-step pipeline arriving children first completes, every step linked', () => {
  const order = hugeOrder();
  const started = performance.now();
  const r = runHuge(order);
  const ms = performance.now() - started;
  assert.equal(r.pendingBeforePipeline, 100_002);
  assert.equal(r.resolvedCount, 100_003);
  assert.equal(r.stepsWithFullPath, 100_000);
  assert.equal(r.evictedCount, 0);
  assert.equal(r.pendingAfter, 0);
  // Sanity bound only (linear takes well under a second); the structural check is the next test.
  assert.ok(ms < 10_000, `100,000 steps took ${Math.round(ms)} ms`);
});

test('cost per span is constant: the work for 100,000 steps is 100× the work for 1,000, not 10,000×', () => {
  const small = hugePipeline(1_000);
  const large = hugeOrder();
  let smallResult: ReturnType<typeof runHuge> | undefined;
  let largeResult: ReturnType<typeof runHuge> | undefined;
  const smallWork = countWork(() => (smallResult = runHuge(small)));
  const largeWork = countWork(() => (largeResult = runHuge(large)));
  assert.equal(smallResult!.stepsWithFullPath, 1_000);
  assert.equal(largeResult!.stepsWithFullPath, 100_000);
  const perSpanSmall = smallWork / small.length;
  const perSpanLarge = largeWork / large.length;
  assert.ok(perSpanSmall > 1, `the counter saw no work (${smallWork}): the patching is broken`);
  assert.ok(perSpanLarge <= perSpanSmall * 1.25 + 2, `work per span grows with size: ${perSpanSmall.toFixed(1)} at 1,000 vs ${perSpanLarge.toFixed(1)} at 100,000`);
  assert.ok(perSpanLarge < 60, `${perSpanLarge.toFixed(1)} operations per span`);
});

test(
  'cost per span does not grow with maxRememberedSpans once it is full (a long-lived exporter)',
  () => {
    // 1,200 pipelines of 100 steps each, children first: what a CI agent's exporter sees all day.
    const spans: Made[] = [];
    for (let p = 0; p < 1_200; p++) {
      const t = new TraceBuilder().add('p', 'pipeline');
      for (let i = 0; i < 100; i++) t.add(`st${i}`, 'step', 'p');
      for (let i = 0; i < 100; i++) spans.push(t.get(`st${i}`));
      spans.push(t.get('p'));
    }
    // Counted operations (Map/Set calls, iterator steps), not milliseconds: a timing here measured the
    // machine's load and the collector's heap size (CI saw 83 vs 349 ms on a busy runner), while a
    // scan over what is remembered shows up as work that grows with the bound. Timings live in the bench.
    const work = (maxRememberedSpans: number): number => {
      const store = new PendingStore({ maxPendingSpans: 200_000, maxRememberedSpans, maxAgeMs: 18 * HOUR }, { resolve: (_s, _l, i) => i, evict() {} });
      const counted = countWork(() => {
        for (const m of spans) store.add(m.span, m.level);
      });
      assert.equal(store.pendingCount, 0);
      return counted / spans.length;
    };
    const small = work(500);
    const large = work(20_000);
    assert.ok(small > 1, `the counter saw no work (${small}): the patching is broken`);
    assert.ok(large <= small * 1.1 + 1, `operations per span: ${small.toFixed(1)} with maxRememberedSpans 500, ${large.toFixed(1)} with 20,000`);
  },
);

test('parent loops: a span its own parent, A → B → A, and a ring with a tail are found at resolveOrphans(), each once; nothing stays held', () => {
  const resolved: string[] = [];
  const loops: string[] = [];
  const store = new PendingStore(
    { maxPendingSpans: 1000, maxRememberedSpans: 1000, maxAgeMs: 18 * HOUR },
    { resolve: (s, _l, i) => (resolved.push(s.name), i), evict: () => assert.fail('nothing is evicted'), cycle: (s) => loops.push(s.name) },
  );
  const traceId = 'c'.repeat(32);
  const make = (name: string, spanId: string, parent: string, labelled: Level | null = 'step'): void => {
    const level = labelled ?? undefined;
    const span: SpanData = {
      name,
      spanContext: () => ({ traceId, spanId }),
      parentSpanContext: { spanId: parent },
      startTime: [Math.floor(NOW / 1000) - 1, 0],
      endTime: [Math.floor(NOW / 1000), 0],
      status: { code: SpanStatusCode.UNSET },
      attributes: level ? { 'ci.level': level } : {},
      events: [],
      resource: { attributes: {} },
    };
    store.add(span, level);
  };
  make('self', '0000000000000001', '0000000000000001');
  make('A', '000000000000000a', '000000000000000b', 'job');
  make('B', '000000000000000b', '000000000000000a', 'stage');
  make('r1', '00000000000000r1', '00000000000000r2');
  make('r2', '00000000000000r2', '00000000000000r3', null);
  make('r3', '00000000000000r3', '00000000000000r1');
  make('tail', '000000000000tail', '00000000000000r2');
  make('waits', '00000000000waits', '0000000000absent'); // an ordinary orphan, not a loop
  assert.equal(store.pendingCount, 8);
  assert.equal(store.pendingLabelledCount, 7);
  store.resolveOrphans();
  assert.equal(store.pendingCount, 0);
  assert.equal(store.pendingLabelledCount, 0);
  assert.equal(loops.length, 3, `loops reported: ${loops.join(', ')}`);
  assert.deepEqual([...resolved].sort(), ['A', 'B', 'r1', 'r3', 'self', 'tail', 'waits']);
});

test('deferred release: while a released subtree is still being marked, the cap and the age limit spare it; once marked, they apply again', () => {
  const resolved: string[] = [];
  const evicted: string[] = [];
  const store = new PendingStore(
    { maxPendingSpans: 50, maxRememberedSpans: 10_000, maxAgeMs: 18 * HOUR },
    { resolve: (s, _l, i) => (resolved.push(s.name), i), evict: (s) => evicted.push(s.name) },
    true,
  );
  const a = new TraceBuilder().add('p', 'pipeline').add('j', 'job', 'p');
  for (let i = 0; i < 40; i++) a.add(`a${i}`, 'step', 'j');
  for (let i = 0; i < 40; i++) store.add(a.get(`a${i}`).span, 'step');
  store.add(a.get('j').span, 'job');
  assert.equal(store.pendingCount, 41);
  // The pipeline arrives: its 41 descendants have known ancestors, but the deferred store has
  // marked only the pipeline released so far.
  store.add(a.get('p').span, 'pipeline');
  // Another build's spans push the count past the cap: none of the released ones may go, and
  // the age limit waits too.
  const b = new TraceBuilder().add('q', 'pipeline').add('k', 'job', 'q');
  for (let i = 0; i < 30; i++) b.add(`b${i}`, 'step', 'k');
  for (let i = 0; i < 30; i++) store.add(b.get(`b${i}`).span, 'step');
  store.expire(NOW + 19 * HOUR);
  assert.deepEqual(evicted, []);
  // Resolving in small slices: everything under the pipeline comes out.
  let slices = 0;
  while (store.drain(3)) slices++;
  assert.ok(slices > 3, `resolved in ${slices} slices`);
  assert.equal(resolved.length, 42);
  assert.deepEqual(evicted, []);
  assert.equal(store.pendingCount, 30, 'only the other build is held');
  // The release is done: the cap applies again (30 + 25 > 50: the 5 oldest go).
  for (let i = 30; i < 55; i++) b.add(`b${i}`, 'step', 'k');
  for (let i = 30; i < 55; i++) store.add(b.get(`b${i}`).span, 'step');
  assert.deepEqual(evicted, ['b0', 'b1', 'b2', 'b3', 'b4']);
  store.expire(NOW + 19 * HOUR);
  assert.equal(evicted.length, 55, 'and so does the age limit');
});
