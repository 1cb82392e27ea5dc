// The synthetic build: real SDK spans from a real BasicTracerProvider, collected in memory
// before any timing starts, so every contender pays only for exporting, never for tracing.
import { context, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanRecorder } from '../testkit/span-recorder.js';

export interface Shape {
  stages: number;
  jobsPerStage: number;
  stepsPerJob: number;
}

/** The pipeline: 1 pipeline + 3 stages + 12 jobs + 96 steps = 112 spans. */
export const TYPICAL: Shape = { stages: 3, jobsPerStage: 4, stepsPerJob: 8 };

/** A monorepo-sized pipeline of `steps` steps, 100 per job and 10 jobs per stage. */
export function bigShape(steps: number): Shape {
  const jobs = Math.max(1, Math.round(steps / 100));
  const stages = Math.max(1, Math.round(jobs / 10));
  return { stages, jobsPerStage: Math.round(jobs / stages), stepsPerJob: Math.round(steps / jobs) };
}

export function spansPerPipeline(s: Shape): number {
  return 1 + s.stages + s.stages * s.jobsPerStage + s.stages * s.jobsPerStage * s.stepsPerJob;
}

export interface GenerateOptions {
  /**
   * Put the pipeline's `ci.git.*` on the resource too (a provider per pipeline, as one CI
   * process per build has), so every span carries git, not only the pipeline span.
   */
  gitOnResource?: boolean;
}

export interface Workload {
  spans: ReadableSpan[];
  /** Spans per pipeline id (trace id), for the contenders that need the tree. */
  pipelines: number;
  /** Labelled spans = events a correct exporter sends. */
  events: number;
}

const TOOLS = ['tsc', 'eslint', 'vitest', 'esbuild', 'docker build', 'go test', 'cargo build', 'bazel run'];

function makeTracer(
  collector = new SpanRecorder(),
  extra: Record<string, string> = {},
): { tracer: Tracer; collector: SpanRecorder; provider: BasicTracerProvider } {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'monorepo-build',
      'host.name': 'ci-runner-17',
      'deployment.environment.name': 'ci',
      ...extra,
    }),
    spanProcessors: [collector],
    // Defaults cap attributes at 128 and events at 128: fine for ~10 attributes and 1 event.
  });
  return { tracer: provider.getTracer('bench-build'), collector, provider };
}

/**
 * Builds `count` pipelines of `shape`, with timestamps inside the last hour (Datadog rejects
 * events older than 18 h, so a stale workload would measure the drop path instead).
 * About 1 step in 40 fails with an exception event, and the failure propagates upward.
 */
export function generate(count: number, shape: Shape, seed = 1, opts: GenerateOptions = {}): Workload {
  const made = makeTracer();
  const collector = made.collector;
  let tracer = made.tracer;
  let rnd = seed >>> 0 || 1;
  // xorshift: a fixed seed keeps sizes and error counts identical across runs and contenders.
  const next = (): number => {
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) / 4294967296;
  };
  const now = Date.now();
  for (let p = 0; p < count; p++) {
    let t = now - 45 * 60_000 + p * 7;
    const run = 1000 + p;
    const sha = (0x1f2e3d4c5b6a7988n * BigInt(run + 1)).toString(16).padStart(40, '0').slice(0, 40);
    const git = {
      'ci.git.repository_url': 'https://github.com/acme/monorepo.git',
      'ci.git.sha': sha,
      'ci.git.branch': p % 5 === 0 ? 'main' : `feature/change-${run}`,
      'ci.git.author_email': 'dev@example.com',
    };
    // One CI process per pipeline, its git on the resource: every span then carries ci.git.*.
    if (opts.gitOnResource) tracer = makeTracer(collector, git).tracer;
    const pipeline = tracer.startSpan(
      'build-and-test',
      {
        startTime: t,
        attributes: {
          'ci.level': 'pipeline',
          'ci.url': `https://ci.example.com/acme/monorepo/pipelines/${run}`,
          ...git,
          'ci.pipeline_id': String(run),
          'ci.tags': ['team:build', `shard:${p % 4}`],
          'vcs.ref.head.name': 'main',
          'cicd.pipeline.run.id': run,
        },
      },
      context.active(),
    );
    const pctx = trace.setSpan(context.active(), pipeline);
    let pipelineFailed = false;
    for (let s = 0; s < shape.stages; s++) {
      const stage = tracer.startSpan(
        `stage-${s}`,
        { startTime: t, attributes: stageAttributes(s) },
        pctx,
      );
      const sctx = trace.setSpan(pctx, stage);
      let stageFailed = false;
      for (let j = 0; j < shape.jobsPerStage; j++) {
        const jobNo = s * shape.jobsPerStage + j;
        const job = tracer.startSpan(
          `job-${jobNo}`,
          {
            startTime: t,
            attributes: {
              'ci.level': 'job',
              'ci.url': `https://ci.example.com/acme/monorepo/pipelines/${run}/jobs/${jobNo}`,
              'ci.node.name': `runner-${jobNo % 8}`,
              'ci.node.labels': ['linux', 'x64'],
              'ci.queue_time': Math.floor(next() * 5000),
              'ci.metrics': [`cache.hits:${Math.floor(next() * 100)}`],
              'process.pid': 4000 + jobNo,
              'os.type': 'linux',
              'host.arch': 'amd64',
              'cicd.pipeline.task.name': `job-${jobNo}`,
            },
          },
          sctx,
        );
        const jctx = trace.setSpan(sctx, job);
        let jobFailed = false;
        for (let k = 0; k < shape.stepsPerJob; k++) {
          const dur = 5 + Math.floor(next() * 400);
          const step = tracer.startSpan(
            `${TOOLS[k % TOOLS.length]} packages/pkg-${jobNo}/${k}`,
            { startTime: t, attributes: stepAttributes(jobNo, k, next) },
            jctx,
          );
          if (next() < 0.025) {
            failStep(step, jobNo, k);
            jobFailed = true;
          }
          t += dur;
          step.end(t);
        }
        if (jobFailed) job.setStatus({ code: SpanStatusCode.ERROR, message: 'a step failed' });
        stageFailed ||= jobFailed;
        t += 3;
        job.end(t);
      }
      if (stageFailed) stage.setStatus({ code: SpanStatusCode.ERROR });
      pipelineFailed ||= stageFailed;
      t += 2;
      stage.end(t);
    }
    if (pipelineFailed) pipeline.setStatus({ code: SpanStatusCode.ERROR });
    pipeline.end(t + 1);
  }
  const spans = collector.spans;
  return { spans, pipelines: count, events: spans.length };
}

function stageAttributes(s: number): Record<string, string | number | boolean | string[]> {
  return {
    'ci.level': 'stage',
    'ci.tags': [`stage:${s}`],
    'build.phase': ['prepare', 'build', 'test', 'package'][s % 4] as string,
    'build.parallelism': 4,
    'build.cache.enabled': true,
    'code.namespace': 'monorepo',
    'process.runtime.name': 'nodejs',
    'process.runtime.version': '20.20.2',
    'os.type': 'linux',
    'host.arch': 'amd64',
  };
}

function stepAttributes(
  jobNo: number,
  k: number,
  next: () => number,
): Record<string, string | number | boolean | string[]> {
  return {
    'ci.level': 'step',
    'process.command': TOOLS[k % TOOLS.length] as string,
    'process.command_args': ['--project', `packages/pkg-${jobNo}`],
    'process.exit_code': 0,
    'code.filepath': `packages/pkg-${jobNo}/src/module-${k}.ts`,
    'build.target': `//packages/pkg-${jobNo}:target-${k}`,
    'build.cache_hit': next() < 0.6,
    'build.action.digest': (Math.floor(next() * 2 ** 52)).toString(16).padStart(14, '0'),
    'thread.id': k % 8,
    'ci.tags': [`pkg:pkg-${jobNo}`],
  };
}

function failStep(step: Span, jobNo: number, k: number): void {
  const err = new Error(`Assertion failed in packages/pkg-${jobNo}/src/module-${k}.test.ts: expected 3 to equal 4`);
  err.name = 'AssertionError';
  err.stack = `${err.name}: ${err.message}\n    at Context.<anonymous> (packages/pkg-${jobNo}/src/module-${k}.test.ts:42:11)\n    at process.processImmediate (node:internal/timers:478:21)`;
  step.recordException(err);
  step.setAttribute('process.exit_code', 1);
  step.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

/** Splits spans into the batches a BatchSpanProcessor would hand over (default 512). */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
