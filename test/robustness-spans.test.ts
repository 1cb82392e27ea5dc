// Hostile input on the span side (issue 7): malformed span objects, quadratic work, times out of
// range, types the SDK lets through, parent loops. Each test is a class of input that broke one
// of the exporter's promises (nothing thrown into the host, every labelled span counted, every
// body valid, no stall); each failed before the fix.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../src/index.js';
import { PendingStore } from '../src/hierarchy/pending-store.js';
import { checkSpan, isRefusal, normalizeTime } from '../src/span-shape.js';
import { hrTimeToRfc3339, msToRfc3339 } from '../src/mapping/time.js';
import type { Resource } from '../src/mapping/transform.js';
import { validateEvent } from '../src/validation/validate.js';
import { startIntake, type Intake } from '../testkit/intake.js';
import { assertAllValid, ci, ExportResultCode, exportDirect, hrTime, recordTree, SHA } from './support/trace-helpers.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const NOW = Date.now();
const HOUR = 3_600_000;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
let seq = 0;
const nextSpanId = (): string => (++seq).toString(16).padStart(16, '0');

/** A span object as a bridge or an OTLP receiver would build it: plain data, no SDK. */
function light(name: unknown, attributes: unknown, o: { spanId?: string; parent?: string; traceId?: string; endMs?: number; over?: Record<string, unknown> } = {}): Record<string, unknown> {
  const spanId = o.spanId ?? nextSpanId();
  const traceId = o.traceId ?? TRACE;
  const end = o.endMs ?? NOW - 1000;
  const s: Record<string, unknown> = {
    name,
    spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
    startTime: hrTime(end - 5000),
    endTime: hrTime(end),
    status: { code: SpanStatusCode.UNSET },
    attributes,
    events: [],
    resource: { attributes: { 'service.name': 'hand-made' } },
    ...o.over,
  };
  if (o.parent) s.parentSpanContext = { traceId, spanId: o.parent, traceFlags: 1, isRemote: false };
  return s;
}

async function setup(t: TestContext, options: DatadogCIPipelineExporterOptions = {}): Promise<{ intake: Intake; exporter: DatadogCIPipelineExporter; lines: string[] }> {
  const intake = await startIntake();
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: (l) => lines.push(l), flushTimeoutMs: 10_000, shutdownTimeoutMs: 10_000, ...options });
  t.after(async () => {
    await exporter.shutdown();
    await intake.close();
  });
  return { intake, exporter, lines };
}

const send = (exporter: DatadogCIPipelineExporter, spans: unknown[]): ReturnType<typeof exportDirect> => exportDirect(exporter, spans as ReadableSpan[]);
const names = (intake: Intake): string[] => intake.events.map((e) => e.attributes.resource.name).sort();

// ---------------------------------------------------------------------------------------------

test('one malformed span is dropped and counted alone: the good spans of its batch, before and after it, are sent', async (t) => {
  const { intake, exporter, lines } = await setup(t);
  const pipelineId = nextSpanId();
  const good = (n: string): Record<string, unknown> => light(n, ci('step', n), { parent: pipelineId });
  const result = await send(exporter, [
    good('before'),
    light('no attributes', undefined, { parent: pipelineId }),
    { ...light('no span context', ci('step', 'x')), spanContext: undefined },
    light('bad context', ci('step', 'x'), { over: { spanContext: () => ({ traceId: 42 }) } }),
    light('no end', ci('step', 'x'), { parent: pipelineId, over: { endTime: undefined } }),
    light('NaN end', ci('step', 'x'), { parent: pipelineId, over: { endTime: [NaN, 0] } }),
    null,
    42,
    'a span',
    good('after'),
    light('build', ci('pipeline', 'build'), { spanId: pipelineId }),
  ]);
  assert.equal(result.code, ExportResultCode.SUCCESS);
  await exporter.forceFlush();
  assert.deepEqual(names(intake), ['after', 'before', 'build']);
  const c = exporter.getCounters();
  assert.equal(c.dropped.malformed, 8);
  assert.equal(c.pending, 0);
  assertAllValid(intake);
  // One line per kind of defect, each naming the span and what is wrong with it.
  assert.ok(lines.some((l) => l.includes('"no attributes"') && l.includes('attributes are undefined')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('"no end"') && l.includes('endTime')), lines.join('\n'));
});

test('spans shaped like SDK 1.x (parentSpanId), 2.x/3.x (parentSpanContext) and light OTLP-receiver objects are all accepted', async (t) => {
  const { intake, exporter } = await setup(t);
  const real = await recordTree({ name: 'sdk2', attributes: ci('pipeline', 'sdk2'), children: [{ name: 'sdk2/job', attributes: ci('job', 'sdk2/job') }] });
  const p = nextSpanId();
  const trace2 = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';
  const v1Step = light('v1 step', ci('step', 'v1 step'), { traceId: trace2 });
  v1Step.parentSpanId = p; // SDK 1.x
  const otlpRoot = light('otlp', ci('pipeline', 'otlp'), { traceId: trace2, spanId: p, over: { parentSpanContext: { spanId: '', traceId: trace2 }, kind: 1 } });
  const noEvents = light('bare job', ci('job', 'bare job'), { traceId: trace2, parent: p, over: { events: undefined, resource: undefined, kind: undefined } });
  const result = await send(exporter, [...real, v1Step, noEvents, otlpRoot]);
  assert.equal(result.code, ExportResultCode.SUCCESS);
  await exporter.forceFlush();
  assert.deepEqual(names(intake), ['bare job', 'otlp', 'sdk2', 'sdk2/job', 'v1 step']);
  assert.equal(intake.events.find((e) => e.attributes.resource.name === 'v1 step')!.attributes.resource.pipeline_name, 'otlp');
  assert.equal(exporter.getCounters().dropped.malformed, 0);
  assertAllValid(intake);
});

test('spans that cannot be read (getters that throw) are counted one by one, in every batch, and each batch goes on', async (t) => {
  const { intake, exporter, lines } = await setup(t);
  const throwing = (msg: string): Record<string, unknown> => {
    const attributes = {};
    Object.defineProperty(attributes, 'ci.level', { enumerable: true, get: () => { throw new Error(msg); } });
    return light('trap', attributes);
  };
  // An attribute that throws only when the mapping reads it: a bug-like failure inside resolution.
  const odd: Attributes = { ...ci('pipeline', 'odd') };
  Object.defineProperty(odd, 'ci.name', { enumerable: true, get: () => { throw new TypeError('odd getter'); } });
  const unconvertible = light('odd', odd);
  for (let i = 0; i < 3; i++) {
    const p = nextSpanId();
    const r = await send(exporter, [throwing(`boom ${i}`), unconvertible, light(`ok${i}`, ci('pipeline', `ok${i}`), { spanId: p, traceId: `${i}`.repeat(32) })]);
    assert.equal(r.code, ExportResultCode.SUCCESS);
  }
  await exporter.forceFlush();
  assert.deepEqual(names(intake), ['ok0', 'ok1', 'ok2']);
  const c = exporter.getCounters();
  assert.equal(c.dropped.malformed, 3, 'each unreadable span is counted');
  assert.equal(c.dropped.invalid, 1, 'the same unconvertible span (same IDs) three times: one event, counted once');
  assert.ok(lines.every((l) => !l.includes('\n')));
});

test('100,000 ci.tags, half not key:value: validated in linear time, and the warning is one short line', () => {
  const tags: string[] = [];
  for (let i = 0; i < 100_000; i++) tags.push(i % 2 === 0 ? `k${i}:v` : `bad tag ${i}`);
  const metrics: string[] = [];
  for (let i = 0; i < 100_000; i++) metrics.push(i % 2 === 0 ? `m${i}:${i}` : `m${i}: `);
  const r = { level: 'pipeline', name: 'p', status: 'success', url: 'u', start: 'x', end: 'x', tags, metrics } as unknown as Resource;
  // CPU time, not wall time: other processes on the machine must not make this fail. Before the
  // fix this took over 10 s; it takes a few ms.
  const cpu0 = process.cpuUsage();
  const verdict = validateEvent(r, { timeMs: NOW, startMs: NOW }, 'pipeline "p"', NOW);
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000;
  assert.ok(ms < 1000, `validation took ${ms} ms of CPU`);
  assert.equal((r.tags as string[]).length, 50_000);
  assert.equal((r.metrics as string[]).length, 50_000, 'whitespace-only metric values are left out');
  for (const f of verdict.fixes) assert.ok(f.message.length < 1000, `a ${f.message.length}-character message`);
  assert.ok(verdict.fixes.some((f) => f.message.includes('left out 50000 of 100000')));
});

test('times: an out-of-range time does not poison the formatting cache, and only years 0000-9999 are written', () => {
  const good = Math.floor(NOW / 1000);
  assert.match(hrTimeToRfc3339([good, 0]), /^\d{4}-/);
  const far = 1e13; // year 318857
  assert.throws(() => hrTimeToRfc3339([far, 0]), RangeError);
  // Before the fix the second call found the first one's half-written cache entry: a wrong date.
  assert.throws(() => hrTimeToRfc3339([far, 0]), RangeError);
  assert.equal(hrTimeToRfc3339([good, 5000]), `${new Date(good * 1000).toISOString().slice(0, 19)}.000005Z`);
  assert.throws(() => msToRfc3339(253_402_300_800_000), RangeError); // 10000-01-01
  assert.equal(msToRfc3339(253_402_300_799_999), '9999-12-31T23:59:59.999Z');
  assert.equal(msToRfc3339(-62_167_219_200_000), '0000-01-01T00:00:00.000Z');
});

test('times: span times and ci.start/ci.end beyond year 9999 are never sent; later events carry the right date', async (t) => {
  const { intake, exporter, lines } = await setup(t);
  const far = 253_402_300_800_000; // 10000-01-01T00:00:00Z
  await send(exporter, [
    light('far span', ci('pipeline', 'far span'), { over: { endTime: hrTime(far) } }),
    light('far attr', ci('pipeline', 'far attr', { 'ci.end': far, 'ci.start': '+010000-01-01T00:00:00Z' }), { traceId: 'b'.repeat(32) }),
    light('late', ci('pipeline', 'late'), { traceId: 'c'.repeat(32) }),
  ]);
  await exporter.forceFlush();
  assertAllValid(intake);
  assert.deepEqual(names(intake), ['far attr', 'late']);
  const expected = new Date(NOW - 1000).toISOString().slice(0, 19);
  for (const e of intake.events) assert.ok(String(e.attributes.resource.end).startsWith(expected), String(e.attributes.resource.end));
  assert.equal(exporter.getCounters().dropped.malformed, 1);
  assert.ok(lines.some((l) => l.includes('ci.end') && l.includes('9999')), lines.join('\n'));
});

test('times: a NaN or far-future end time does not stop the expiry of held spans behind it', () => {
  const evicted: string[] = [];
  const store = new PendingStore({ maxPendingSpans: 1000, maxRememberedSpans: 1000, maxAgeMs: 18 * HOUR }, { resolve: (_s, _l, i) => i, evict: (s) => evicted.push(s.name) });
  const waiting = nextSpanId(); // a parent that never arrives
  const held = (name: string, endTime: [number, number]): void =>
    store.add(light(name, ci('step', name), { parent: waiting, over: { endTime } }) as never, 'step');
  held('nan', [NaN, NaN]);
  held('future', hrTime(NOW + 1000 * 24 * HOUR));
  held('old', hrTime(NOW - 17 * HOUR));
  assert.equal(store.pendingCount, 3);
  // Held spans expire in arrival order (which approximates end order): an end time that is NaN
  // or in the future counts as the span's arrival, so it no longer holds back the rest forever.
  store.expire(Date.now() + 19 * HOUR);
  assert.deepEqual(evicted.sort(), ['future', 'nan', 'old']);
  assert.equal(store.pendingCount, 0);
});

test('types the SDK lets through: names that are not strings, ci.status "constructor"/"__proto__"/"toString", ci.queue_time 1e300, whitespace metrics, a non-string status message', async (t) => {
  const { intake, exporter } = await setup(t);
  const p = nextSpanId();
  const step = (name: unknown, more: Attributes, over: Record<string, unknown> = {}): Record<string, unknown> =>
    light(name, { 'ci.level': 'step', ...more }, { parent: p, over });
  await send(exporter, [
    step(42, {}),
    step(null, {}),
    step(undefined, {}),
    step('s-constructor', { 'ci.status': 'constructor' }),
    step('s-proto', { 'ci.status': '__proto__' }),
    step('s-tostring', { 'ci.status': 'toString' }),
    step('s-metrics', { 'ci.metrics': ['a: ', 'b:\t', 'c:1', 'd:0x10'], 'ci.parameters.__proto__': 'kept' }),
    step('s-message', {}, { status: { code: SpanStatusCode.ERROR, message: { not: 'a string' } } }),
    light('p', ci('pipeline', 'p', { 'ci.queue_time': 1e300, 'ci.git.sha': SHA }), { spanId: p }),
  ]);
  await exporter.forceFlush();
  assertAllValid(intake);
  assert.deepEqual(names(intake), ['42', 'p', 's-constructor', 's-message', 's-metrics', 's-proto', 's-tostring']);
  const res = (n: string): Record<string, unknown> => intake.events.find((e) => e.attributes.resource.name === n)!.attributes.resource;
  for (const n of ['s-constructor', 's-proto', 's-tostring']) assert.equal(res(n).status, 'success');
  assert.equal(res('p').queue_time, undefined);
  assert.deepEqual(res('s-metrics').metrics, ['c:1']);
  assert.deepEqual(res('s-metrics').parameters, JSON.parse('{"__proto__":"kept"}'));
  assert.equal(res('s-message').status, 'error');
  assert.equal((res('s-message').error as Record<string, unknown> | undefined)?.message, undefined);
  // A null or undefined name is an empty one: dropped as invalid, with the message that says so.
  assert.equal(exporter.getCounters().dropped.invalid, 2);
});

test('parent loops (a span its own parent, A → B → A, a longer ring with a tail) are counted at shutdown, none left pending', async (t) => {
  const { intake, exporter, lines } = await setup(t);
  const self = nextSpanId();
  const [a, b] = [nextSpanId(), nextSpanId()];
  const ring = [nextSpanId(), nextSpanId(), nextSpanId(), nextSpanId()];
  const spans = [
    light('self', ci('step', 'self'), { spanId: self, parent: self }),
    light('A', ci('job', 'A'), { spanId: a, parent: b }),
    light('B', ci('stage', 'B'), { spanId: b, parent: a }),
    ...ring.map((id, i) => light(`r${i}`, i === 1 ? { 'other.attr': 1 } : ci('step', `r${i}`), { spanId: id, parent: ring[(i + 1) % ring.length] })),
    light('tail', ci('step', 'tail'), { parent: ring[2] }),
    light('ok', ci('pipeline', 'ok'), { traceId: 'd'.repeat(32) }),
  ];
  await send(exporter, spans);
  assert.equal(exporter.getCounters().pending, 7, 'labelled spans held (r1 is unlabelled)');
  await exporter.shutdown();
  const c = exporter.getCounters();
  assert.equal(c.pending, 0);
  // Labelled loop members and the tail: 1 + 2 + 3 + 1, each counted once.
  assert.equal(c.dropped.orphaned, 7);
  assert.equal(c.eventsSent, 1);
  assert.ok(lines.some((l) => l.includes('its own ancestor')), lines.join('\n'));
  assertAllValid(intake);
});

test('export() is robust to what is not an array of spans, and to a missing callback', async (t) => {
  const { exporter } = await setup(t);
  const r = await new Promise((resolve) => exporter.export(null as never, resolve));
  assert.deepEqual(r, { code: ExportResultCode.SUCCESS });
  assert.doesNotThrow(() => exporter.export([light('x', ci('pipeline', 'x'))] as never, undefined as never));
});

test('values and keys put into messages are quoted and clipped: a newline cannot forge a log line', async (t) => {
  const { exporter, lines } = await setup(t);
  const forged = '\n[datadog-ci-pipeline-exporter] forged line';
  const p = nextSpanId();
  await send(exporter, [
    light('a', { 'ci.level': `job${forged}` }),
    light('b', { 'ci.level': 'step', [`ci.parameters.k${forged}`]: { not: 'a string' } as never, 'ci.status': `x${forged}`, 'ci.tags': ['ok:1', `bad${forged}`] }, { parent: p }),
    light('c', { 'ci.level': 'pipeline', 'ci.url': 'u', 'ci.git.sha': `nope${forged}`, 'ci.git.repository_url': 'r', 'ci.git.author_email': 'e', 'ci.name': 'x'.repeat(100_000) }, { spanId: p }),
  ]);
  await exporter.forceFlush();
  assert.ok(lines.length >= 4, lines.join('\n'));
  for (const l of lines) {
    assert.ok(!l.includes('\n'), `a line with a newline: ${JSON.stringify(l)}`);
    assert.ok(l.length < 2000, `a ${l.length}-character line`);
  }
});

test('span-shape: SDK spans pass through untouched (no copy on the hot path); hand-made ones are normalised or refused', async () => {
  const sdk = await recordTree({ name: 'p', attributes: ci('pipeline', 'p'), children: [{ name: 's', attributes: ci('step', 's') }] });
  for (const s of sdk) assert.equal(checkSpan(s), s);
  const ok = light('fine', ci('step', 'fine'), { parent: 'abcdefabcdefabcd' });
  assert.equal(checkSpan(ok), ok);
  // Normalised: a number as name, epoch ms as times, no events/resource, an empty parent ID (a root).
  const fixed = checkSpan(light(7, ci('step', 'x'), { over: { startTime: NOW - 10, endTime: [Math.floor(NOW / 1000), 2e9], events: null, resource: 3, parentSpanContext: { spanId: '' } } }));
  assert.ok(!isRefusal(fixed));
  assert.equal(fixed.name, '7');
  assert.deepEqual(fixed.startTime, normalizeTime(NOW - 10));
  assert.deepEqual(fixed.endTime, [Math.floor(NOW / 1000) + 2, 0]);
  assert.deepEqual(fixed.events, []);
  assert.deepEqual(fixed.resource.attributes, {});
  assert.equal(fixed.parentSpanContext, undefined);
  // Refused: the kind names the defect.
  const kind = (raw: unknown): string | undefined => {
    const r = checkSpan(raw);
    return isRefusal(r) ? r.kind : undefined;
  };
  assert.equal(kind(undefined), 'not-object');
  assert.equal(kind({ ...ok, spanContext: 1 }), 'no-span-context');
  assert.equal(kind({ ...ok, spanContext: () => ({ traceId: '', spanId: 'x' }) }), 'bad-span-context');
  assert.equal(kind({ ...ok, attributes: null }), 'no-attributes');
  assert.equal(kind({ ...ok, endTime: undefined }), 'bad-end-time');
  assert.equal(kind({ ...ok, startTime: [1e13, 0] }), 'bad-start-time');
  // An unlabelled span without times still links its descendants.
  assert.equal(kind({ ...ok, attributes: {}, endTime: undefined }), undefined);
  assert.equal(normalizeTime([253_402_300_800, 0]), undefined);
  assert.deepEqual(normalizeTime([-62_167_219_200, 0]), [-62_167_219_200, 0]);
});
