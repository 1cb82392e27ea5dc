// DatadogCIPipelineSpanProcessor on a real provider, against the validating intake: spans are
// sent as they end (ancestors still open), running events precede finished ones with the same
// IDs, the lineage learned at start equals the exporter's own mapping, memory is released and
// bounded, and the processor lives beside a BatchSpanProcessor with a real OTLP exporter.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ROOT_CONTEXT, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor, type DatadogCIPipelineSpanProcessorOptions } from '../src/index.js';
import { ExportResultCode } from '../src/otel-types.js';
import { startIntake, type Intake, type IntakeEvent } from '../testkit/intake.js';
import { SpanRecorder } from '../testkit/span-recorder.js';

interface Live {
  intake: Intake;
  exporter: DatadogCIPipelineExporter;
  processor: DatadogCIPipelineSpanProcessor;
  provider: BasicTracerProvider;
  tracer: Tracer;
  lines: string[];
  recorder: SpanRecorder;
}

async function startLive(t: TestContext, options: DatadogCIPipelineSpanProcessorOptions = {}, extra: SpanProcessor[] = []): Promise<Live> {
  const intake = await startIntake();
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: (l) => lines.push(l), flushTimeoutMs: 10_000, shutdownTimeoutMs: 10_000, detectEnvironment: false });
  const processor = new DatadogCIPipelineSpanProcessor(exporter, { scheduledDelayMs: 50, ...options });
  const recorder = new SpanRecorder();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ci-build' }),
    spanProcessors: [recorder, processor, ...extra],
  });
  t.after(async () => {
    await provider.shutdown().catch(() => undefined);
    await intake.close();
  });
  return { intake, exporter, processor, provider, tracer: provider.getTracer('live-tests'), lines, recorder };
}

function start(tracer: Tracer, name: string, attributes: Attributes, parent?: Span): Span {
  return tracer.startSpan(name, { attributes }, parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
}

const res = (e: IntakeEvent): Record<string, unknown> => e.attributes.resource;
const byName = (events: IntakeEvent[], name: string): Array<Record<string, unknown>> => events.map(res).filter((r) => r.name === name);

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a step is delivered while its job and pipeline are still open; running events precede finished ones with equal IDs, name, URL and start', async (t) => {
  const live = await startLive(t);
  const pipeline = start(live.tracer, 'build', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p/1' });
  const job = start(live.tracer, 'test', { 'ci.level': 'job', 'ci.url': 'https://ci.example/p/1/j/2' }, pipeline);
  const step = start(live.tracer, 'npm test', { 'ci.level': 'step' }, job);
  // Running events go at once, without any span having ended.
  await live.intake.waitForEvents(2, 10_000);
  step.end();
  await live.intake.waitForEvents(3, 10_000);
  const [runningPipeline] = byName(live.intake.events, 'build');
  const [runningJob] = byName(live.intake.events, 'test');
  const [stepEvent] = byName(live.intake.events, 'npm test');
  assert.equal(runningPipeline?.status, 'running');
  assert.equal(runningPipeline?.end, undefined);
  assert.equal(runningJob?.status, 'running');
  assert.equal(stepEvent?.pipeline_unique_id, runningPipeline?.unique_id);
  assert.equal(stepEvent?.pipeline_name, 'build');
  assert.equal(stepEvent?.job_id, runningJob?.id);
  assert.equal(stepEvent?.job_name, 'test');
  job.end();
  pipeline.end();
  await live.processor.forceFlush();
  assert.equal(live.intake.events.length, 5);
  assert.deepEqual(live.intake.invalid, []);
  for (const name of ['build', 'test']) {
    const [running, finished] = byName(live.intake.events, name);
    assert.ok(running && finished, name);
    assert.equal(running.status, 'running');
    assert.equal(finished.status, 'success');
    for (const key of ['unique_id', 'id', 'name', 'url', 'start', 'pipeline_unique_id']) assert.equal(finished[key], running[key], `${name}.${key}`);
    assert.ok(typeof finished.end === 'string');
  }
});

test('runningEvents: false sends finished events only', async (t) => {
  const live = await startLive(t, { runningEvents: false });
  const pipeline = start(live.tracer, 'build', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p/1' });
  const job = start(live.tracer, 'test', { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' }, pipeline);
  job.end();
  pipeline.end();
  await live.processor.forceFlush();
  assert.deepEqual(live.intake.events.map((e) => res(e).status), ['success', 'success']);
});

test('the lineage learned at start gives exactly the events the exporter alone makes from the same spans', async (t) => {
  const live = await startLive(t);
  const root = start(live.tracer, 'workflow runner', {});
  const pipeline = start(
    live.tracer,
    'release',
    { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/r', 'ci.git.repository_url': 'https://git.example/a.git', 'ci.git.sha': 'a'.repeat(40), 'ci.git.author.email': 'a@example.com', 'ci.env': 'prod' },
    root,
  );
  const stage = start(live.tracer, 'build stage', { 'ci.level': 'stage' }, pipeline);
  const glue = start(live.tracer, 'make', {}, stage);
  const job = start(live.tracer, 'compile', { 'ci.level': 'job', 'ci.url': 'https://ci.example/r/j', 'ci.id': 'compile-1' }, glue);
  const step1 = start(live.tracer, 'cc', { 'ci.level': 'step' }, job);
  const inner = start(live.tracer, 'helper', {}, step1);
  const step2 = start(live.tracer, 'ld', { 'ci.level': 'step', 'ci.git.branch': 'main' }, inner);
  const named = start(live.tracer, 'span name', { 'ci.level': 'job', 'ci.name': 'explicit job', 'ci.url': 'https://ci.example/r/k' }, stage);
  const step3 = start(live.tracer, 'under explicit', { 'ci.level': 'step' }, named);
  for (const s of [step3, named, step2, inner, step1, job, glue, stage, pipeline, root]) s.end();
  await live.processor.forceFlush();
  const liveFinished = live.intake.events.filter((e) => res(e).status !== 'running');

  // The same ended spans, through the exporter alone (its PendingStore learns lineage at the end).
  const intake2 = await startIntake();
  t.after(() => intake2.close());
  const alone = new DatadogCIPipelineExporter({ endpoint: intake2.endpoint, logger: () => undefined, detectEnvironment: false });
  const spans = live.recorder.spans as ReadableSpan[];
  await new Promise<void>((resolve) => alone.export([...spans].reverse(), () => resolve()));
  await alone.shutdown();
  const key = (e: IntakeEvent): string => String(res(e).unique_id ?? res(e).id);
  const sorted = (es: IntakeEvent[]): IntakeEvent[] => [...es].sort((a, b) => key(a).localeCompare(key(b)));
  assert.equal(liveFinished.length, 7);
  assert.deepEqual(sorted(liveFinished), sorted(intake2.events));
  const [ld] = byName(liveFinished, 'ld');
  assert.equal(ld?.job_id, 'compile-1');
  assert.equal(byName(liveFinished, 'under explicit')[0]?.job_name, 'explicit job');
});

test("the lineage learned at start includes what Datadog's tag names give (git.*), as the exporter alone does", async (t) => {
  const live = await startLive(t);
  const pipeline = start(live.tracer, 'tagged', {
    'ci.level': 'pipeline',
    'ci.url': 'https://ci.example/t',
    'git.repository_url': 'https://git.example/t.git',
    'git.commit.sha': 'c'.repeat(40),
    'git.commit.author.email': 't@example.com',
    'git.branch': 'main',
  });
  const job = start(live.tracer, 'j', { 'ci.level': 'job', 'ci.url': 'https://ci.example/t/j' }, pipeline);
  job.end();
  pipeline.end();
  await live.processor.forceFlush();
  const liveFinished = live.intake.events.filter((e) => res(e).status !== 'running');

  const intake2 = await startIntake();
  t.after(() => intake2.close());
  const alone = new DatadogCIPipelineExporter({ endpoint: intake2.endpoint, logger: () => undefined, detectEnvironment: false });
  await new Promise<void>((resolve) => alone.export([...(live.recorder.spans as ReadableSpan[])].reverse(), () => resolve()));
  await alone.shutdown();
  const [liveJob] = byName(liveFinished, 'j');
  assert.equal((liveJob?.git as Record<string, unknown> | undefined)?.sha, 'c'.repeat(40), "the job inherits the pipeline's git");
  const key = (e: IntakeEvent): string => String(res(e).unique_id ?? res(e).id);
  const sorted = (es: IntakeEvent[]): IntakeEvent[] => [...es].sort((a, b) => key(a).localeCompare(key(b)));
  assert.deepEqual(sorted(liveFinished), sorted(intake2.events));
});

test('forceFlush waits for delivery; shutdown flushes and shuts the exporter down', async (t) => {
  const live = await startLive(t, { scheduledDelayMs: 60_000 });
  const pipeline = start(live.tracer, 'p', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  start(live.tracer, 's', { 'ci.level': 'step' }, pipeline).end();
  await live.intake.waitForEvents(1, 10_000);
  await live.processor.forceFlush();
  assert.deepEqual(live.intake.events.map((e) => res(e).name), ['p', 's']);
  start(live.tracer, 's2', { 'ci.level': 'step' }, pipeline).end();
  pipeline.end();
  await live.provider.shutdown();
  assert.deepEqual(live.intake.events.map((e) => res(e).name), ['p', 's', 's2', 'p']);
  const result = await new Promise<number>((resolve) => live.exporter.export([], (r) => resolve(r.code)));
  assert.equal(result, ExportResultCode.FAILED);
});

test('what the processor learned is released when the pipeline ends; open spans are bounded by maxTrackedSpans (counted)', async (t) => {
  const live = await startLive(t, { maxTrackedSpans: 5, runningEvents: false });
  const recs = (live.processor as unknown as { recs: Map<string, unknown> }).recs;
  const pipeline = start(live.tracer, 'p', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  const job = start(live.tracer, 'j', { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' }, pipeline);
  for (let i = 0; i < 3; i++) start(live.tracer, `s${i}`, { 'ci.level': 'step' }, job).end();
  // Ended steps are kept for late children until their pipeline ends.
  assert.equal(recs.size, 5);
  job.end();
  pipeline.end();
  assert.equal(recs.size, 0);
  await live.processor.forceFlush();
  assert.equal(live.intake.events.length, 5);

  const p2 = start(live.tracer, 'p2', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p2' });
  for (let i = 0; i < 9; i++) start(live.tracer, `open${i}`, { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' }, p2);
  assert.equal(recs.size, 5);
  assert.equal(live.exporter.getCounters().dropped.pending_overflow, 5);
  assert.equal(live.lines.filter((l) => l.includes('maxTrackedSpans')).length, 1);
});

test('an open span is forgotten after maxEventAgeMs (counted once as pending_expired)', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: (l) => lines.push(l), maxEventAgeMs: 200 });
  const processor = new DatadogCIPipelineSpanProcessor(exporter, { runningEvents: false });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({}), spanProcessors: [processor] });
  t.after(() => provider.shutdown());
  const tracer = provider.getTracer('t');
  start(tracer, 'never ends', { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' });
  await new Promise((r) => setTimeout(r, 300));
  start(tracer, 'young', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  assert.equal(exporter.getCounters().dropped.pending_expired, 1);
  assert.equal((processor as unknown as { recs: Map<string, unknown> }).recs.size, 1);
  assert.equal(lines.filter((l) => l.includes('older than maxEventAgeMs')).length, 1);
});

test('maxQueueSize bounds the ended spans waiting to be sent (drops counted)', async (t) => {
  const live = await startLive(t, { maxQueueSize: 2, scheduledDelayMs: 60_000, runningEvents: false });
  const pipeline = start(live.tracer, 'p', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  // maxExportBatchSize is capped by maxQueueSize: the second span triggers a send on the next turn.
  for (let i = 0; i < 5; i++) start(live.tracer, `s${i}`, { 'ci.level': 'step' }, pipeline).end();
  assert.equal(live.exporter.getCounters().dropped.queue_overflow, 3);
  assert.equal(live.lines.filter((l) => l.includes('maxQueueSize')).length, 1);
  await new Promise((r) => setImmediate(r));
  pipeline.end();
  await live.processor.forceFlush();
  assert.deepEqual(live.intake.events.map((e) => res(e).name), ['s0', 's1', 'p']);
});

test('a link attribute changed after start, once descendants exist, is reported once with the span and the attribute', async (t) => {
  const live = await startLive(t, { runningEvents: false });
  const pipeline = start(live.tracer, 'p', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  const job = start(live.tracer, 'j', { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' }, pipeline);
  start(live.tracer, 's', { 'ci.level': 'step' }, job).end();
  job.setAttribute('ci.name', 'renamed');
  job.end();
  pipeline.setAttribute('ci.name', 'renamed too');
  pipeline.end();
  await live.processor.forceFlush();
  const said = live.lines.filter((l) => l.includes('changed after the span started'));
  assert.equal(said.length, 1, live.lines.join('\n'));
  assert.match(said[0]!, /job "j" \(trace [0-9a-f]{32}, span [0-9a-f]{16}\): ci\.name/);
  // A span without descendants may change freely: nothing said about it.
  const lone = start(live.tracer, 'lone', { 'ci.level': 'step' }, undefined);
  lone.setAttribute('ci.level', 'job');
  lone.end();
  assert.equal(live.lines.filter((l) => l.includes('changed after the span started')).length, 1);
});

test('beside a BatchSpanProcessor with the real OTLP/HTTP exporter: both get every span', async (t) => {
  const bodies: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  const otlp = new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 10 });
  const live = await startLive(t, {}, [otlp]);
  const pipeline = start(live.tracer, 'pipeline-otlp', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' });
  const job = start(live.tracer, 'job-otlp', { 'ci.level': 'job', 'ci.url': 'https://ci.example/j' }, pipeline);
  start(live.tracer, 'plain-otlp', {}, job).end();
  job.end();
  pipeline.end();
  await live.provider.forceFlush();
  await until(() => bodies.length > 0, 'an OTLP request');
  const all = Buffer.concat(bodies).toString('latin1');
  for (const name of ['pipeline-otlp', 'job-otlp', 'plain-otlp']) assert.ok(all.includes(name), name);
  const seen = live.intake.events.map((e) => `${res(e).name}:${res(e).status}`);
  assert.deepEqual(seen.slice(0, 2), ['pipeline-otlp:running', 'job-otlp:running']);
  assert.deepEqual(seen.slice(2).sort(), ['job-otlp:success', 'pipeline-otlp:success']);
});

test("the processor's timers do not keep a process alive (a span queued for 60 s, no shutdown)", async () => {
  const index = new URL('../src/index.ts', import.meta.url).href;
  const code = `
    import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
    import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor } from '${index}';
    const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', logger: () => {} });
    const provider = new BasicTracerProvider({ spanProcessors: [new DatadogCIPipelineSpanProcessor(exporter, { scheduledDelayMs: 60000, runningEvents: false })] });
    provider.getTracer('t').startSpan('p', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/p' } }).end();
  `;
  const t0 = Date.now();
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: new URL('..', import.meta.url).pathname, timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
  );
  // Well below the 60 s the queued span waits for: the process ended on its own.
  assert.ok(Date.now() - t0 < 30_000);
});
