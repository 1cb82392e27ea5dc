// Runs in a fresh Node process (bundled by bench/process-figures.ts, never imported by the
// bench itself). Modes:
//   load <module>              → prints the ms that `import(module)` took
//   short <ours|otlp> <module> <url> → a 100-span pipeline that runs ≥ 1 s, then shutdown();
//                                prints the wall-clock time at which its last span ended
//   memory <module> <count>    → (with --expose-gc) heap bytes per held step, everything counted
//   first <ours|otlp> <module> <url> → the ms from before import() to one span delivered (import,
//                                construction, undici's lazy load for ours, one request answered),
//                                and the CPU ms of the process over the same stretch
import { setTimeout as sleep } from 'node:timers/promises';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

const [mode, ...rest] = process.argv.slice(2);
const wallNow = (): number => performance.timeOrigin + performance.now();

type OurModule = { DatadogCIPipelineExporter: new (o: object) => SpanExporter & { getCounters(): { pending: number } } };

async function load(spec: string): Promise<void> {
  const t0 = performance.now();
  await import(spec);
  console.log(JSON.stringify({ loadMs: performance.now() - t0 }));
}

/** The module is imported here, so that its load counts where the caller times it. */
async function makeExporter(kind: string, spec: string, url: string, service: string): Promise<SpanExporter> {
  if (kind === 'ours') {
    const { DatadogCIPipelineExporter } = (await import(spec)) as OurModule;
    return new DatadogCIPipelineExporter({ endpoint: url, apiKey: 'bench-key', service, logger: () => undefined });
  }
  const { OTLPTraceExporter } = (await import(spec)) as { OTLPTraceExporter: new (o: object) => SpanExporter };
  return new OTLPTraceExporter({ url });
}

async function short(kind: string, spec: string, url: string): Promise<void> {
  const exporter = await makeExporter(kind, spec, url, 'short-lived');
  // The processor a CI process would use; its timer is unref'd by the SDK.
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('short-lived');
  // 1 pipeline, 3 stages, 3 jobs each, 10 steps each = 103 spans; each step sleeps ~10 ms, so
  // the build runs about 1 s of real time, like a short CI job.
  const pipeline = tracer.startSpan('pipeline', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/p/1', 'ci.pipeline_id': '1' } });
  const pctx = trace.setSpan(context.active(), pipeline);
  for (let s = 0; s < 3; s++) {
    const stage = tracer.startSpan(`stage-${s}`, { attributes: { 'ci.level': 'stage' } }, pctx);
    const sctx = trace.setSpan(pctx, stage);
    for (let j = 0; j < 3; j++) {
      const job = tracer.startSpan(`job-${s}-${j}`, { attributes: { 'ci.level': 'job' } }, sctx);
      const jctx = trace.setSpan(sctx, job);
      for (let k = 0; k < 11; k++) {
        const step = tracer.startSpan(`step-${k}`, { attributes: { 'ci.level': 'step', 'process.command': 'make' } }, jctx);
        await sleep(10);
        step.end();
      }
      job.end();
    }
    stage.end();
  }
  pipeline.end();
  const lastEnd = wallNow();
  await provider.shutdown();
  // When shutdown() resolved: the rest of the tail is Node's own exit.
  console.log(JSON.stringify({ lastEnd, shutDown: wallNow() }));
  // No process.exit(): what is measured is how long Node takes to exit on its own.
}

async function first(kind: string, spec: string, url: string): Promise<void> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const exporter = await makeExporter(kind, spec, url, 'first');
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.getTracer('first').startSpan('pipeline', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/p/1' } }).end();
  await provider.forceFlush();
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ firstMs: performance.now() - t0, firstCpuMs: (c.user + c.system) / 1000 }));
  process.exit(0);
}

async function memory(spec: string, count: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('memory mode needs --expose-gc');
  const { DatadogCIPipelineExporter } = (await import(spec)) as OurModule;
  const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'bench-key', service: 'memory', logger: () => undefined });
  let batch: ReadableSpan[] = [];
  const flush = async (): Promise<void> => {
    const b = batch;
    batch = [];
    await new Promise((resolve) => exporter.export(b, resolve));
  };
  // Only the exporter keeps the ended spans: this processor forwards them and forgets them.
  const forward: SpanProcessor = {
    onStart() {},
    onEnd(span) {
      batch.push(span);
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  const provider = new BasicTracerProvider({ spanProcessors: [forward] });
  const tracer = provider.getTracer('memory');
  // The pipeline span never ends, so every step under it is held.
  const pipeline = tracer.startSpan('pipeline', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/p/1' } });
  const pctx = trace.setSpan(context.active(), pipeline);
  const job = tracer.startSpan('job', { attributes: { 'ci.level': 'job' } }, pctx);
  const jctx = trace.setSpan(pctx, job);
  // Warm up the paths, then measure from a collected heap.
  const warm = (n: number, tag: string): Promise<void>[] => {
    const out: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      // The bench's step attributes (10 of them), as in the throughput workload.
      tracer
        .startSpan(`${tag}-${i}`, {
          attributes: {
            'ci.level': 'step',
            'process.command': 'tsc',
            'process.command_args': ['--project', `packages/pkg-${i % 12}`],
            'process.exit_code': 0,
            'code.filepath': `packages/pkg-${i % 12}/src/module-${i % 8}.ts`,
            'build.target': `//packages/pkg-${i % 12}:target-${i % 8}`,
            'build.cache_hit': i % 3 === 0,
            'build.action.digest': (i * 2654435761).toString(16).padStart(14, '0'),
            'thread.id': i % 8,
            'ci.tags': [`pkg:pkg-${i % 12}`],
          },
        }, jctx)
        .end();
      if (batch.length >= 512) out.push(flush());
    }
    out.push(flush());
    return out;
  };
  await Promise.all(warm(1000, 'warm'));
  for (let i = 0; i < 3; i++) gc();
  const before = process.memoryUsage().heapUsed;
  const held0 = exporter.getCounters().pending;
  await Promise.all(warm(count, 'step'));
  for (let i = 0; i < 3; i++) gc();
  await sleep(10);
  for (let i = 0; i < 3; i++) gc();
  const after = process.memoryUsage().heapUsed;
  const held = exporter.getCounters().pending - held0;
  console.log(JSON.stringify({ bytesPerSpan: (after - before) / held, held }));
  process.exit(0);
}

const run = mode === 'load' ? load(rest[0] as string)
  : mode === 'short' ? short(rest[0] as string, rest[1] as string, rest[2] as string)
  : mode === 'memory' ? memory(rest[0] as string, Number(rest[1]))
  : mode === 'first' ? first(rest[0] as string, rest[1] as string, rest[2] as string)
  : Promise.reject(new Error(`unknown mode ${mode}`));
run.catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
