// The live path's two figures (issue 9):
// 1. Time from a step's end to its event at the intake while its pipeline runs: a real provider
//    with DatadogCIPipelineSpanProcessor at default options, steps ending at random intervals,
//    the testkit intake (schema-validating) noting when each event arrives.
//    Target: p99 ≤ scheduledDelayMs (1000) + 100 ms.
// 2. Wall-time overhead of `run` around a trivial command (`true`) against a healthy local intake:
//    median of `node dist/cli.js run … -- true` minus median of `true` alone, interleaved.
//    Target: median ≤ 150 ms. It includes Node's own start-up: that is what a build pays.
import { spawn } from 'node:child_process';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor } from '../src/index.js';
import { BUILT_CLI, builtCliIsCurrent } from '../testkit/built-cli.js';
import { startIntake } from '../testkit/intake.js';
import { median } from './measure.js';
import { isMainModule } from './main-module.js';

export interface LiveTarget {
  name: string;
  value: string;
  pass: boolean | undefined;
}

export interface LiveResult {
  stepLatency: { steps: number; p50Ms: number; p99Ms: number; maxMs: number };
  runOverhead: { runs: number; runMedianMs: number; trueMedianMs: number; overheadMs: number; nodeMedianMs: number } | undefined;
  notes: string[];
  targets: LiveTarget[];
}

const SCHEDULED_DELAY_MS = 1000;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

async function stepLatency(steps: number): Promise<LiveResult['stepLatency']> {
  const ended = new Map<string, number>();
  const latencies: number[] = [];
  const intake = await startIntake({
    respond: (req) => {
      const at = performance.now();
      for (const e of req.events) {
        const t = ended.get(e.attributes.resource.name);
        if (t !== undefined && e.attributes.resource.level === 'step') latencies.push(at - t);
      }
      return undefined;
    },
    record: false,
  });
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'bench' }), spanProcessors: [new DatadogCIPipelineSpanProcessor(exporter)] });
  const tracer = provider.getTracer('bench');
  const pipeline = tracer.startSpan('live bench', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/bench' } });
  const job = tracer.startSpan('job', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example/bench/job' } }, trace.setSpan(ROOT_CONTEXT, pipeline));
  const jobCtx = trace.setSpan(ROOT_CONTEXT, job);
  for (let i = 0; i < steps; i++) {
    await new Promise((r) => setTimeout(r, Math.random() * 50));
    const name = `step ${i}`;
    const step = tracer.startSpan(name, { attributes: { 'ci.level': 'step' } }, jobCtx);
    ended.set(name, performance.now());
    step.end();
  }
  // Wait for the last steps while the pipeline still runs: no flush, the processor's own pace.
  const deadline = Date.now() + SCHEDULED_DELAY_MS * 5;
  while (latencies.length < steps && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  job.end();
  pipeline.end();
  await provider.shutdown();
  await intake.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  return { steps: latencies.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: sorted[sorted.length - 1] ?? NaN };
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code }));
    child.on('error', () => resolve({ ms: NaN, code: null }));
  });
}

async function runOverhead(runs: number, notes: string[]): Promise<LiveResult['runOverhead']> {
  const cli = BUILT_CLI;
  if (!builtCliIsCurrent()) {
    notes.push('run overhead: dist/cli.js is missing or older than src/; building it (npm run build)');
    const built = await timed('npm', ['run', '--silent', 'build'], process.env);
    if (built.code !== 0) {
      notes.push('run overhead: the build failed; figure skipped');
      return undefined;
    }
  }
  const intake = await startIntake({ record: false });
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' };
  for (const k of Object.keys(env)) if (k.startsWith('DD_') || k === 'TRACEPARENT') delete env[k];
  const runArgs = [cli, 'run', '--endpoint', intake.endpoint, '--url', 'https://ci.example/bench', '--', 'true'];
  const withRun: number[] = [];
  const alone: number[] = [];
  const nodeAlone: number[] = [];
  // One warm-up of each (file cache), then interleaved pairs: load drifts, pairs share it.
  await timed(process.execPath, runArgs, env);
  await timed('true', [], env);
  for (let i = 0; i < runs; i++) {
    const r = await timed(process.execPath, runArgs, env);
    if (r.code !== 0) notes.push(`run overhead: run exited ${r.code}`);
    withRun.push(r.ms);
    alone.push((await timed('true', [], env)).ms);
    nodeAlone.push((await timed(process.execPath, ['-e', '0'], env)).ms);
  }
  const accepted = intake.acceptedCount();
  await intake.close();
  // One event per run: `true` ends before run's exporter can send, so no running event precedes
  // the finished one (a longer command gets both).
  if (accepted < runs + 1) notes.push(`run overhead: the intake accepted ${accepted} events for ${runs + 1} runs (expected at least 1 per run)`);
  const runMedianMs = median(withRun);
  const trueMedianMs = median(alone);
  return { runs, runMedianMs, trueMedianMs, overheadMs: runMedianMs - trueMedianMs, nodeMedianMs: median(nodeAlone) };
}

export async function liveBench(quick: boolean): Promise<LiveResult> {
  const notes: string[] = [];
  const latency = await stepLatency(quick ? 60 : 200);
  const overhead = await runOverhead(quick ? 5 : 15, notes);
  const targets: LiveTarget[] = [
    {
      name: `step end → intake p99 ≤ scheduledDelayMs + 100 ms (${SCHEDULED_DELAY_MS + 100} ms), pipeline running`,
      value: `p50 ${latency.p50Ms.toFixed(0)} ms, p99 ${latency.p99Ms.toFixed(0)} ms (${latency.steps} steps)`,
      pass: latency.steps > 0 ? latency.p99Ms <= SCHEDULED_DELAY_MS + 100 : undefined,
    },
    {
      name: 'run overhead around `true` ≤ 150 ms (median)',
      value: overhead ? `${overhead.overheadMs.toFixed(0)} ms (run ${overhead.runMedianMs.toFixed(0)} ms vs true ${overhead.trueMedianMs.toFixed(0)} ms, ${overhead.runs} runs; \`node -e 0\` alone: ${overhead.nodeMedianMs.toFixed(0)} ms)` : 'not measured',
      pass: overhead ? overhead.overheadMs <= 150 : undefined,
    },
  ];
  return { stepLatency: latency, runOverhead: overhead, notes, targets };
}

// `tsx bench/live.ts [--quick]`: the two figures alone.
if (isMainModule(import.meta.url, 'live')) {
  void liveBench(process.argv.includes('--quick')).then((r) => {
    for (const n of r.notes) console.log(`note: ${n}`);
    for (const t of r.targets) console.log(`${t.pass === undefined ? 'N/A ' : t.pass ? 'PASS' : 'FAIL'}  ${t.name}: ${t.value}`);
  });
}
