// One pipeline whose pipeline span ends last, as in a real build: every stage, job and step is
// held until it arrives. Phase A hands over everything but the pipeline span (all of it pending);
// between the phases the heap is measured; phase B hands over the pipeline span and flushes.
// The spans are retained by the workload array throughout, so the heap delta over phase A is
// what the exporter keeps per pending span beyond the span itself.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { setImmediate as tick } from 'node:timers/promises';
import { BSP_BATCH } from './contenders.js';
import { bigShape, generate } from './workload.js';
import { fullGc, measure, median, stallOf, worstStall, type Stall } from './measure.js';
import type { Sink } from './sink.js';
import type { BenchExporter, ExporterFactory } from './exporter.js';

/** The stall figures are the worst run's (longest stall in any run; see measure.ts). */
export interface ScaleRow extends Stall {
  steps: number;
  spans: number;
  runs: number;
  /** Wall time of phases A + B per span (median over runs). */
  usPerSpan: number;
  cpuUsPerSpan: number;
  /** Spans held at the end of phase A. */
  pending: number;
  /** Heap growth over phase A ÷ pending (median over runs). */
  heapBytesPerPending: number;
}

export interface ScaleResult {
  rows: ScaleRow[];
  /** Runs in which the sink did not get every event, at the exporter's default options. */
  lossyRuns: number;
  notes: string[];
}

/** Returns the number of export() calls that reported FAILED: losses are reported, not fatal. */
async function exportAll(exporter: BenchExporter, spans: readonly ReadableSpan[]): Promise<number> {
  let failed = 0;
  for (let i = 0; i < spans.length; i += BSP_BATCH) {
    const batch = spans.slice(i, i + BSP_BATCH);
    const r = await new Promise<ExportResult>((resolve) => exporter.export(batch, resolve));
    if (r.code !== ExportResultCode.SUCCESS) failed++;
    await tick();
  }
  return failed;
}

/** The stall figures are the worse phase's. */
interface RunResult extends Stall {
  wallMs: number;
  cpuMs: number;
  pending: number;
  heapDelta: number;
  /** Stalls of phase A (everything but the pipeline span: filing) and B (resolving, delivery). */
  stallA: number;
  stallB: number;
}

/** One scale run (exported for bench/stalls.ts's A/B). */
export async function runOne(make: ExporterFactory, sink: Sink, spans: readonly ReadableSpan[], notes: string[]): Promise<RunResult & { lossy: boolean }> {
  const pipelineSpan = spans[spans.length - 1] as ReadableSpan;
  if (pipelineSpan.attributes['ci.level'] !== 'pipeline') throw new Error('scale workload: the pipeline span must end last');
  const children = spans.slice(0, -1);
  await sink.reset();
  const exporter = make(sink.pipelineUrl);
  fullGc();
  const heap0 = process.memoryUsage().heapUsed;
  let failed = 0;
  const a = await measure(async () => {
    failed += await exportAll(exporter, children);
  });
  const pending = exporter.getCounters().pending;
  fullGc();
  const heapDelta = process.memoryUsage().heapUsed - heap0;
  const b = await measure(async () => {
    failed += await exportAll(exporter, [pipelineSpan]);
    await exporter.forceFlush();
  });
  const counters = exporter.getCounters();
  await exporter.shutdown();
  const st = await sink.stats();
  if (st.events !== spans.length || failed > 0) {
    const dropped = Object.entries(counters.dropped)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}=${n}`)
      .join(', ');
    notes.push(
      `${spans.length} spans: the sink counted ${st.events} events, ${failed} export() call(s) FAILED (dropped: ${dropped || 'none'})`,
    );
  }
  const worst = worstStall([a, b]);
  return {
    lossy: st.events !== spans.length || failed > 0,
    wallMs: a.wallMs + b.wallMs,
    cpuMs: a.cpuMs + b.cpuMs,
    pending,
    heapDelta,
    ...stallOf(worst),
    stallA: a.maxStallMs,
    stallB: b.maxStallMs,
  };
}

export async function scale(
  make: ExporterFactory,
  sink: Sink,
  opts: { quick: boolean; log: (line: string) => void },
): Promise<ScaleResult> {
  const notes: string[] = [];
  const rows: ScaleRow[] = [];
  let lossyRuns = 0;
  // The 1,000-step runs are short, so more of them; one warm-up run each is not counted.
  const plan = [
    { steps: 1_000, runs: opts.quick ? 5 : 15 },
    { steps: 100_000, runs: opts.quick ? 1 : 3 },
  ];
  for (const { steps, runs } of plan) {
    const t = performance.now();
    const w = generate(1, bigShape(steps), 7);
    opts.log(`scale: ${steps} steps = ${w.spans.length} spans, generated in ${Math.round(performance.now() - t)} ms`);
    await runOne(make, sink, w.spans, notes);
    const results: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const r = await runOne(make, sink, w.spans, notes);
      if (r.lossy) lossyRuns++;
      results.push(r);
    }
    const n = w.spans.length;
    const worst = worstStall(results);
    const row: ScaleRow = {
      steps,
      spans: n,
      runs,
      usPerSpan: median(results.map((r) => (r.wallMs * 1000) / n)),
      cpuUsPerSpan: median(results.map((r) => (r.cpuMs * 1000) / n)),
      pending: median(results.map((r) => r.pending)),
      heapBytesPerPending: median(results.map((r) => (r.pending > 0 ? r.heapDelta / r.pending : NaN))),
      ...stallOf(worst),
    };
    opts.log(
      `scale: ${steps} steps: ${row.usPerSpan.toFixed(2)} µs/span, ${Math.round(row.heapBytesPerPending)} B/pending, stall ${row.maxStallMs.toFixed(1)} ms`,
    );
    rows.push(row);
  }
  return { rows, lossyRuns, notes: [...new Set(notes)] };
}
