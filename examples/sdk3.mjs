// The README's SDK 3.x usage, runnable (Node >= 22.15, as the 3.x SDK requires):
//   npm install datadog-ci-pipeline-exporter @opentelemetry/api @opentelemetry/sdk-trace
//   DD_API_KEY=... node sdk3.mjs
// The Node 24 consumer test (test/consumers) runs this file in a project where the package was
// installed from its tarball, with DD_CI_PIPELINE_ENDPOINT pointing at a local intake.
import process from 'node:process';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { DatadogCIPipelineExporter } from 'datadog-ci-pipeline-exporter';

const exporter = new DatadogCIPipelineExporter({
  // Unset (the usual case), events go to https://api.<DD_SITE>/api/v2/ci/pipeline with DD_API_KEY.
  endpoint: process.env.DD_CI_PIPELINE_ENDPOINT || undefined,
});
// SDK 3.x: `TracerProvider` (was BasicTracerProvider), and processors take an options object.
const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter })] });
const tracer = provider.getTracer('my-build');

const pipeline = tracer.startSpan('release', { attributes: {
  'ci.level': 'pipeline',
  'ci.url': 'https://ci.example.com/builds/1234',
  'ci.git.repository_url': 'https://github.com/acme/app',
  'ci.git.sha': '0123456789abcdef0123456789abcdef01234567',
  'ci.git.branch': 'main',
  'ci.git.author_email': 'dev@acme.example',
} });
// No context manager is registered here, so parents are passed explicitly.
const job = tracer.startSpan('build', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/builds/1234/build' } },
  trace.setSpan(ROOT_CONTEXT, pipeline));
const step = tracer.startSpan('npm ci', { attributes: { 'ci.level': 'step' } }, trace.setSpan(ROOT_CONTEXT, job));
step.end();
job.end();
pipeline.end();

// Delivers what is left, within shutdownTimeoutMs. The catch keeps a build without DD_API_KEY
// (a fork's pull request) green: the exporter has already said what is missing.
await provider.shutdown().catch(() => {});
