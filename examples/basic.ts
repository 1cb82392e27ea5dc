// The README's usage snippet, runnable: `DD_API_KEY=... npx tsx examples/basic.ts`.
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

const pipeline = tracer.startSpan('release', { attributes: {
  'ci.level': 'pipeline',
  'ci.url': 'https://ci.example.com/builds/1234',
  'ci.git.repository_url': 'https://github.com/acme/app',
  'ci.git.sha': '0123456789abcdef0123456789abcdef01234567',
  'ci.git.branch': 'main',
  'ci.git.author_email': 'dev@acme.example',
} });
// No context manager is registered here, so parents are passed explicitly. (With one, e.g.
// @opentelemetry/context-async-hooks, startActiveSpan nests spans by itself.)
const job = tracer.startSpan('build', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/builds/1234/build' } },
  trace.setSpan(ROOT_CONTEXT, pipeline));
const step = tracer.startSpan('npm ci', { attributes: { 'ci.level': 'step' } }, trace.setSpan(ROOT_CONTEXT, job));
step.end();
job.end();
pipeline.end();

// Delivers what is left, within shutdownTimeoutMs. The catch keeps a build without DD_API_KEY
// (a fork's pull request) green: the exporter has already said what is missing.
await provider.shutdown().catch(() => {});
