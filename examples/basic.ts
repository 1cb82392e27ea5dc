// The minimal usage from the README, runnable: `DD_API_KEY=... npx tsx examples/basic.ts`.
// Without DD_API_KEY the exporter prints one line saying what is missing and the process still
// exits 0: a telemetry problem must never fail the build it observes.
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
// In your project: import { DatadogCIPipelineExporter } from 'datadog-ci-pipeline-exporter';
import { DatadogCIPipelineExporter } from '../src/index.js';

const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new DatadogCIPipelineExporter())],
});
const tracer = provider.getTracer('my-build');

const pipeline = tracer.startSpan('my pipeline', {
  attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/my-pipeline/1' },
});
// No context manager is registered here, so the parent is passed explicitly.
const job = tracer.startSpan(
  'build',
  { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/my-pipeline/1/jobs/build' } },
  trace.setSpan(ROOT_CONTEXT, pipeline),
);
job.end();
pipeline.end();

// Flushes every pending event before the process ends. When the exporter is not configured
// (no DD_API_KEY, as in a fork's pull request without secrets) its exports report FAILED, and
// the SDK passes that on as a rejection: catch it, the exporter has already said what is wrong.
await provider.shutdown().catch(() => undefined);
