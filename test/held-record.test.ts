// Held spans are kept as a compact record (src/hierarchy/record.ts) rather than the span object.
// Two things must hold: the record gives the very same events, lineage and vocabulary decisions
// as the span (every vocabulary's fixture, exceptions, statuses, links, children); and holding a
// span no longer keeps the span object alive (counted with a WeakRef and a full GC, not timed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { context, trace, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { Diagnostics } from '../src/diagnostics.js';
import { EventBuilder } from '../src/events.js';
import { PendingStore } from '../src/hierarchy/pending-store.js';
import { HeldSpan } from '../src/hierarchy/record.js';
import { EMPTY_LINEAGE, parentOf, type Lineage, type SpanData } from '../src/mapping/transform.js';
import { resolveOptions } from '../src/options.js';
import type { ReadyEvent } from '../src/delivery/types.js';
import { cicdRun } from './fixtures/vocabularies/cicd.js';
import { exportTraceActionRun, otelCicdActionRun } from './fixtures/vocabularies/github-actions.js';
import { githubReceiverRun } from './fixtures/vocabularies/github-receiver.js';
import { gitlabPipeline } from './fixtures/vocabularies/gitlab-receiver.js';
import { jenkinsBuild } from './fixtures/vocabularies/jenkins.js';
import { produce, type Batch } from './fixtures/vocabularies/producer.js';

const NOW = Date.now();

/** The spans a producer hands over, as the SDK made them. */
async function capture(batches: readonly Batch[]): Promise<ReadableSpan[]> {
  const spans: ReadableSpan[] = [];
  const exporter: SpanExporter = {
    export(batch, done) {
      spans.push(...batch);
      done({ code: 0 });
    },
    shutdown: async () => {},
  };
  await produce(exporter, batches);
  return spans;
}

/** A ci.* build with what a record must carry through: exception and other events, statuses with and without a message, links. */
function ciBuild(): ReadableSpan[] {
  const spans: ReadableSpan[] = [];
  const keep: SpanProcessor = { onStart() {}, onEnd: (s) => spans.push(s), forceFlush: async () => {}, shutdown: async () => {} };
  const tracer = new BasicTracerProvider({ spanProcessors: [keep] }).getTracer('held-record');
  const t0 = NOW - 60_000;
  const url = 'https://ci.example.com/p/7';
  const pipeline = tracer.startSpan('pipeline', { startTime: t0, attributes: { 'ci.level': 'pipeline', 'ci.url': url, 'ci.git.repository_url': 'https://x/r', 'ci.git.sha': '0123456789abcdef0123456789abcdef01234567' } });
  const pctx = trace.setSpan(context.active(), pipeline);
  const job = tracer.startSpan('job', { startTime: t0 + 1, attributes: { 'ci.level': 'job', 'ci.url': `${url}/j` } }, pctx);
  const jctx = trace.setSpan(pctx, job);
  const steps: Array<[string, Attributes, (s: ReturnType<typeof tracer.startSpan>) => void]> = [
    ['plain', {}, () => {}],
    ['ok', { 'ci.tags': ['a:b'] }, (s) => s.setStatus({ code: SpanStatusCode.OK })],
    ['failed', { 'process.exit_code': 2 }, (s) => {
      s.addEvent('log', { line: 'compiling' });
      s.recordException({ name: 'TypeError', message: 'first', stack: 'TypeError: first\n    at x' });
      s.recordException({ name: 'RangeError', message: 'second' });
      s.setStatus({ code: SpanStatusCode.ERROR, message: 'exit 2' });
    }],
    ['error-no-message', {}, (s) => s.setStatus({ code: SpanStatusCode.ERROR })],
    ['logs-only', {}, (s) => s.addEvent('log', { line: 'x' })],
    ['ok-message', {}, (s) => s.setStatus({ code: SpanStatusCode.OK, message: 'fine' })],
  ];
  let t = t0 + 2;
  for (const [name, attributes, act] of steps) {
    const s = tracer.startSpan(name, { startTime: t, attributes: { 'ci.level': 'step', ...attributes }, links: name === 'ok' ? [{ context: job.spanContext(), attributes: { why: 'x' } }] : [] }, jctx);
    act(s);
    s.end(t + 1234.5678);
    t += 2000;
  }
  job.setStatus({ code: SpanStatusCode.ERROR, message: 'a step failed' });
  job.end(t);
  pipeline.end(t + 1);
  return spans;
}

/** What a record of `span` is, as the store makes it. */
const recordOf = (span: SpanData): HeldSpan => {
  const { traceId, spanId } = span.spanContext();
  return HeldSpan.of(span, traceId, spanId, parentOf(span)?.spanId);
};

/**
 * Resolves `spans` top-down with `view` applied to each (identity, or its record): each span
 * built with what its parent returned, and with its children (through `view` too) as a
 * vocabulary reads them. Returns every event's JSON and every lineage, in order.
 */
function resolveAll(spans: readonly ReadableSpan[], view: (s: SpanData) => SpanData): { events: string[]; lineages: Lineage[]; messages: string[] } {
  const resolution = resolveOptions({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'k', detectEnvironment: false });
  assert.ok(resolution.ok);
  const messages: string[] = [];
  const builder = new EventBuilder(resolution.options, new Diagnostics((l) => messages.push(l)));
  const byParent = new Map<string, ReadableSpan[]>();
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const roots: ReadableSpan[] = [];
  for (const s of spans) {
    const p = parentOf(s);
    if (p && ids.has(p.spanId)) {
      const list = byParent.get(p.spanId) ?? [];
      list.push(s);
      byParent.set(p.spanId, list);
    } else roots.push(s);
  }
  const out: ReadyEvent[] = [];
  const lineages: Lineage[] = [];
  const stack: Array<[ReadableSpan, Lineage]> = roots.map((r) => [r, EMPTY_LINEAGE]);
  while (stack.length > 0) {
    const [span, inherited] = stack.shift()!;
    const kids = byParent.get(span.spanContext().spanId) ?? [];
    const level = builder.levelOf(span);
    let lineage = inherited;
    if (level) lineage = builder.build(view(span), level, inherited, NOW, out, () => kids.map(view));
    lineages.push(lineage);
    for (const k of kids) stack.push([k, lineage]);
  }
  return { events: out.map((e) => e.json), lineages, messages };
}

test('a held span\'s record gives the same events, lineage and vocabulary decisions as the span itself', async () => {
  const t0 = NOW - 3_600_000;
  const cases: Array<[string, ReadableSpan[]]> = [
    ['ci.* build', ciBuild()],
    ['cicd', await capture([cicdRun(t0)])],
    ['otel-cicd-action', await capture([otelCicdActionRun(t0)])],
    ['otel-export-trace-action', await capture([exportTraceActionRun(t0)])],
    ['github-receiver', await capture(githubReceiverRun(t0))],
    ['gitlab-receiver', await capture([gitlabPipeline(t0)])],
    ['jenkins', await capture([jenkinsBuild(t0)])],
  ];
  for (const [name, spans] of cases) {
    const asIs = resolveAll(spans, (s) => s);
    const held = resolveAll(spans, recordOf);
    assert.ok(asIs.events.length > 0, `${name}: some events`);
    assert.deepEqual(held.events, asIs.events, `${name}: events byte for byte`);
    assert.deepEqual(held.lineages, asIs.lineages, `${name}: lineages`);
    assert.deepEqual(held.messages, asIs.messages, `${name}: messages`);
  }
  // The cases exercise what the record narrows: an exception among other events, links.
  const failed = ciBuild().find((s) => s.name === 'failed')!;
  assert.equal(failed.events.length, 3);
  assert.deepEqual(recordOf(failed).events.map((e) => e.attributes?.['exception.message']), ['first']);
  assert.ok(resolveAll(ciBuild(), recordOf).events.some((j) => j.includes('"message":"first"')));
});

test('a record shares the span\'s attributes, resource and links, and none of the span\'s own objects', () => {
  const spans = ciBuild();
  const ok = spans.find((s) => s.name === 'ok')!;
  const r = recordOf(ok);
  assert.equal(r.attributes, ok.attributes);
  assert.equal(r.resource, ok.resource);
  assert.equal(r.links, ok.links);
  assert.equal(r.status.code, SpanStatusCode.OK);
  assert.deepEqual([r.startTime, r.endTime], [ok.startTime, ok.endTime]);
  const own = new Set<unknown>([ok, ok.spanContext(), ok.parentSpanContext, ok.startTime, ok.endTime, ok.duration, ok.events, ok.status, ok.instrumentationScope]);
  for (const [key, value] of Object.entries(r)) assert.ok(!own.has(value), `record field ${key} holds an object of the span's own`);
  // No links, no exception: nothing of the kind is held.
  const plain = recordOf(spans.find((s) => s.name === 'logs-only')!);
  assert.equal(plain.links, undefined);
  assert.equal(plain.events.length, 0);
});

test('a span held by the exporter (its ancestors not yet arrived) no longer keeps the span object alive', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'k', logger: () => undefined, detectEnvironment: false });
  const refs: Array<WeakRef<object>> = [];
  // Past 4,096 held spans the store keeps records instead of HeldSpans (record.ts): both forms.
  const count = 5_000;
  // Only the exporter receives the ended spans: this processor forwards them and forgets them.
  await (async () => {
    let batch: ReadableSpan[] = [];
    const forward: SpanProcessor = { onStart() {}, onEnd: (s) => batch.push(s), forceFlush: async () => {}, shutdown: async () => {} };
    const tracer = new BasicTracerProvider({ spanProcessors: [forward] }).getTracer('held');
    // The pipeline and the job never end: every step under them is held.
    const pipeline = tracer.startSpan('pipeline', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/p/1' } });
    const job = tracer.startSpan('job', { attributes: { 'ci.level': 'job' } }, trace.setSpan(context.active(), pipeline));
    const jctx = trace.setSpan(context.active(), job);
    for (let i = 0; i < count; i++) tracer.startSpan(`step-${i}`, { attributes: { 'ci.level': 'step' } }, jctx).end();
    for (const s of batch) refs.push(new WeakRef(s));
    const spans = batch;
    batch = [];
    exporter.export(spans, () => undefined);
  })();
  assert.equal(exporter.getCounters().pending, count, 'every step is held');
  // WeakRef targets live at least until the current job ends.
  await nextTurn();
  gc();
  await nextTurn();
  gc();
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  assert.equal(exporter.getCounters().pending, count, 'still held');
  assert.equal(alive, 0, `${alive} of ${count} held span objects are still alive`);
  await exporter.shutdown();
});

test('a span the record cannot be made from (a links getter that throws) is held as it is, and still resolves', () => {
  const resolved: SpanData[] = [];
  const store = new PendingStore({ maxPendingSpans: 10, maxRememberedSpans: 10, maxAgeMs: 3_600_000 }, { resolve: (s, _l, i) => (resolved.push(s), i), evict() {} });
  const traceId = 'ab'.repeat(16);
  const base = (spanId: string, parent: string | undefined, level: string): SpanData => ({
    name: `${level}-${spanId}`,
    spanContext: () => ({ traceId, spanId }),
    parentSpanContext: parent ? { spanId: parent } : undefined,
    startTime: [Math.floor(NOW / 1000) - 2, 0],
    endTime: [Math.floor(NOW / 1000) - 1, 0],
    status: { code: SpanStatusCode.UNSET },
    attributes: { 'ci.level': level },
    events: [],
    resource: { attributes: {} },
  });
  const odd = Object.defineProperty(base('0000000000000002', '0000000000000001', 'job'), 'links', {
    get() {
      throw new Error('no links here');
    },
  });
  const plain = base('0000000000000003', '0000000000000001', 'job');
  store.add(odd, 'job');
  store.add(plain, 'job');
  assert.equal(store.pendingCount, 2);
  store.add(base('0000000000000001', undefined, 'pipeline'), 'pipeline');
  assert.equal(store.pendingCount, 0);
  assert.deepEqual(resolved.map((s) => s.name), ['pipeline-0000000000000001', 'job-0000000000000003', 'job-0000000000000002']);
  assert.equal(resolved[2], odd, 'held as it is');
  assert.ok(resolved[1] instanceof HeldSpan, 'held as a record');
});

test('spans held among many (kept as records) are read exactly as the few held first (kept as HeldSpans)', () => {
  const resolved: SpanData[] = [];
  const store = new PendingStore({ maxPendingSpans: 100_000, maxRememberedSpans: 100_000, maxAgeMs: 3_600_000 }, { resolve: (s, _l, i) => (resolved.push(s), i), evict() {} });
  const traceId = 'cd'.repeat(16);
  const id = (n: number): string => n.toString(16).padStart(16, '0');
  const made = (n: number, parent: number | undefined, level: string, extra: Partial<SpanData> = {}): SpanData => ({
    name: `${level}-${n}`,
    spanContext: () => ({ traceId, spanId: id(n) }),
    parentSpanContext: parent === undefined ? undefined : { spanId: id(parent) },
    startTime: [Math.floor(NOW / 1000) - 2, n],
    endTime: [Math.floor(NOW / 1000) - 1, n + 1],
    status: n % 7 === 0 ? { code: SpanStatusCode.ERROR, message: `m${n}` } : { code: SpanStatusCode.OK },
    attributes: { 'ci.level': level, n },
    events: n % 5 === 0 ? [{ name: 'log' }, { name: 'exception', attributes: { 'exception.message': `e${n}` } }] : [],
    resource: { attributes: {} },
    ...extra,
  });
  const steps: SpanData[] = [];
  for (let n = 3; n < 6_003; n++) steps.push(made(n, 2, 'step', n % 11 === 0 ? ({ links: [{ context: { traceId, spanId: id(1) } }] } as Partial<SpanData>) : {}));
  for (const s of steps) store.add(s, 'step');
  assert.equal(store.pendingCount, steps.length);
  store.add(made(2, 1, 'job'), 'job');
  store.add(made(1, undefined, 'pipeline'), 'pipeline');
  assert.equal(store.pendingCount, 0);
  const byId = new Map(resolved.map((s) => [s.spanContext().spanId, s]));
  for (const s of steps) {
    const got = byId.get(s.spanContext().spanId)!;
    assert.ok(got instanceof HeldSpan, `${s.name} is read as a HeldSpan`);
    const want = HeldSpan.of(s, traceId, s.spanContext().spanId, id(2));
    assert.deepEqual({ ...got, events: got.events, links: got.links, startTime: got.startTime, endTime: got.endTime }, { ...want, events: want.events, links: want.links, startTime: want.startTime, endTime: want.endTime }, s.name);
  }
});
