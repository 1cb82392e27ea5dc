// Real traces for end-to-end tests: a BasicTracerProvider whose BatchSpanProcessor exports in
// tiny batches (so children and their ancestors land in different export() calls), the exporter
// under test, and the validating intake from the testkit. Nothing here mimics the SDK: spans are
// made by the SDK's own tracer, so the exporter sees exactly what users' builds give it.
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type HrTime, type Span, type TimeInput, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../../src/index.js';
import { startIntake, type Intake, type IntakeEvent, type IntakeOptions } from '../../testkit/intake.js';
import { SpanRecorder } from '../../testkit/span-recorder.js';

export { ExportResultCode };

export interface HarnessOptions {
  /** Exporter options over the harness defaults (endpoint = the intake, logger = `lines`). */
  exporter?: DatadogCIPipelineExporterOptions;
  /** Resource attributes besides service.name. */
  resource?: Attributes;
  /** maxExportBatchSize of the BatchSpanProcessor; small so that a trace crosses export() calls. */
  batchSize?: number;
  /** maxQueueSize of the BatchSpanProcessor (raise it for traces larger than 2048 spans). */
  maxQueueSize?: number;
  intake?: IntakeOptions;
}

export interface Harness {
  intake: Intake;
  exporter: DatadogCIPipelineExporter;
  provider: BasicTracerProvider;
  tracer: Tracer;
  /** Every line the exporter logged. */
  lines: string[];
  /** Every span the provider ended, in end order: the very objects the exporter was given. */
  ended: ReadableSpan[];
  /** Span names of each export() call, in call order, and what each call reported. */
  exportCalls: Array<{ names: string[]; result?: ExportResult }>;
  /** Everything ended so far has been exported and every resulting request answered. */
  flush(): Promise<void>;
  /** Shuts the provider (hence the exporter) down, then the intake. Idempotent. */
  close(): Promise<void>;
}

/** Starts intake + exporter + provider; `t.after` tears them down even when the test fails. */
export async function startHarness(t: TestContext, o: HarnessOptions = {}): Promise<Harness> {
  const intake = await startIntake(o.intake);
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({
    endpoint: intake.endpoint,
    logger: (l) => lines.push(l),
    flushTimeoutMs: 10_000,
    shutdownTimeoutMs: 10_000,
    // The suite must not depend on the CI provider it runs in (test/detect.test.ts covers it).
    detectEnvironment: false,
    ...o.exporter,
  });
  const recorder = new SpanRecorder();
  const exportCalls: Harness['exportCalls'] = [];
  // Same exporter, seen through a window: which spans each export() call carried.
  const watched: SpanExporter = {
    export(spans, done) {
      const call: Harness['exportCalls'][number] = { names: spans.map((s) => s.name) };
      exportCalls.push(call);
      exporter.export(spans, (result) => {
        call.result = result;
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush(),
  };
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ci-build', ...o.resource }),
    spanProcessors: [
      recorder,
      new BatchSpanProcessor(watched, {
        maxExportBatchSize: o.batchSize ?? 2,
        maxQueueSize: o.maxQueueSize ?? 2048,
        scheduledDelayMillis: 1,
      }),
    ],
  });
  let closed: Promise<void> | undefined;
  const h: Harness = {
    intake,
    exporter,
    provider,
    tracer: provider.getTracer('ci-tests'),
    lines,
    ended: recorder.spans,
    exportCalls,
    async flush() {
      await provider.forceFlush();
      // The processor does not wait for an export() that was already running when it was asked to
      // flush; the exporter's own forceFlush covers what that export() handed to delivery.
      await exporter.forceFlush();
    },
    close() {
      closed ??= (async () => {
        await provider.shutdown().catch(() => undefined);
        await intake.close();
      })();
      return closed;
    },
  };
  t.after(() => h.close());
  return h;
}

/** A span to build: its name is the test's handle on it, so names are unique within a tree. */
export interface SpanSpec {
  name: string;
  attributes?: Attributes;
  children?: SpanSpec[];
  startTime?: TimeInput;
  endTime?: TimeInput;
  status?: { code: SpanStatusCode; message?: string };
  exceptions?: Array<Error | { name: string; message: string; stack?: string }>;
}

export interface OpenTree {
  /** Spans by their SpanSpec name. */
  spans: Map<string, Span>;
  /** Children before parents, siblings in order: the order a build ends them. */
  endOrder: Array<{ span: Span; spec: SpanSpec }>;
}

/** Starts every span of `spec` (parents first), without ending any. */
export function openTree(tracer: Tracer, spec: SpanSpec, parent?: Span): OpenTree {
  const tree: OpenTree = { spans: new Map(), endOrder: [] };
  const visit = (s: SpanSpec, p: Span | undefined): void => {
    assert.ok(!tree.spans.has(s.name), `span names must be unique within a tree: ${s.name}`);
    const ctx = p ? trace.setSpan(ROOT_CONTEXT, p) : ROOT_CONTEXT;
    const span = tracer.startSpan(s.name, { attributes: s.attributes ?? {}, startTime: s.startTime }, ctx);
    tree.spans.set(s.name, span);
    for (const c of s.children ?? []) visit(c, span);
    tree.endOrder.push({ span, spec: s });
  };
  visit(spec, parent);
  return tree;
}

export function endSpan(span: Span, spec: SpanSpec): void {
  for (const e of spec.exceptions ?? []) span.recordException(e as Error);
  if (spec.status) span.setStatus(spec.status);
  span.end(spec.endTime);
}

/** Starts and ends a whole tree, children first. */
export function runTree(tracer: Tracer, spec: SpanSpec, parent?: Span): Map<string, Span> {
  const tree = openTree(tracer, spec, parent);
  for (const { span, spec: s } of tree.endOrder) endSpan(span, s);
  return tree.spans;
}

/** Ends the spans of several trees alternately, one of each in turn, each tree children first. */
export function endInterleaved(...trees: OpenTree[]): void {
  const queues = trees.map((t) => [...t.endOrder]);
  while (queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      const next = q.shift();
      if (next) endSpan(next.span, next.spec);
    }
  }
}

/** The UUID form of a trace ID, written out independently of src/mapping/ids.ts. */
export function uuidOfTrace(traceId: string): string {
  const m = /^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$/.exec(traceId);
  assert.ok(m, `not a trace ID: ${traceId}`);
  return m.slice(1).join('-');
}

/** The documented ID of a stage/job/step: first 64 bits of the trace ID, then the span ID. */
export function uuidOfSpan(span: Span): string {
  const { traceId, spanId } = span.spanContext();
  return `${traceId.slice(0, 8)}-${traceId.slice(8, 12)}-${traceId.slice(12, 16)}-${spanId.slice(0, 4)}-${spanId.slice(4)}`;
}

export type Res = IntakeEvent['attributes']['resource'];

/** The one accepted event named `name` (fails when there are none or several). */
export function eventNamed(intake: Intake, name: string): IntakeEvent {
  const found = intake.events.filter((e) => e.attributes.resource.name === name);
  assert.equal(found.length, 1, `expected exactly one event named ${JSON.stringify(name)}, got ${found.length}; names: ${namesOf(intake).join(', ')}`);
  return found[0]!;
}

export function resourceNamed(intake: Intake, name: string): Res {
  return eventNamed(intake, name).attributes.resource;
}

export function namesOf(intake: Intake): string[] {
  return intake.events.map((e) => e.attributes.resource.name).sort();
}

/** Every request the intake saw passed the schema and the prose rules. */
export function assertAllValid(intake: Intake): void {
  assert.deepEqual(
    intake.invalid.map((r) => r.errors),
    [],
    'the intake rejected requests (schema or prose rules)',
  );
}

/** Lines that mention all of `parts`. */
export function linesWith(lines: readonly string[], ...parts: string[]): string[] {
  return lines.filter((l) => parts.every((p) => l.includes(p)));
}

/** Calls export() directly and returns what it reported; fails the test if it throws. */
export function exportDirect(exporter: DatadogCIPipelineExporter, spans: ReadableSpan[]): Promise<ExportResult> {
  return new Promise((resolve) => exporter.export(spans, resolve));
}

/** Ended spans of a tree made by a provider that exports nowhere (for direct export() calls). */
export async function recordTree(spec: SpanSpec, resource: Attributes = {}): Promise<ReadableSpan[]> {
  const recorder = new SpanRecorder();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ci-build', ...resource }),
    spanProcessors: [recorder],
  });
  runTree(provider.getTracer('ci-tests'), spec);
  await provider.shutdown();
  return recorder.spans;
}

/** Seconds and nanoseconds, for times with sub-millisecond digits. */
export function hrTime(epochMs: number, extraNanos = 0): HrTime {
  const sec = Math.floor(epochMs / 1000);
  return [sec, (epochMs - sec * 1000) * 1e6 + extraNanos];
}

/** A build URL for a span name. */
export function urlOf(name: string): string {
  return `https://ci.example.com/builds/${encodeURIComponent(name)}`;
}

/** Attributes of a labelled span; pipelines and jobs get the `ci.url` the API requires. */
export function ci(level: 'pipeline' | 'stage' | 'job' | 'step', name: string, more: Attributes = {}): Attributes {
  const a: Attributes = { 'ci.level': level };
  if (level === 'pipeline' || level === 'job') a['ci.url'] = urlOf(name);
  return { ...a, ...more };
}

export const SHA = '0123456789abcdef0123456789abcdef01234567';
export const SHA2 = 'fedcba9876543210fedcba9876543210fedcba98';
