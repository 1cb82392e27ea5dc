// The README's NodeSDK usage: `new NodeSDK({ traceExporter })` from @opentelemetry/sdk-node (0.2xx
// with SDK 2.x on Node 20, 0.30x with SDK 3.x on Node 24). NodeSDK registers a context manager,
// so startActiveSpan nests the spans by itself.
import { checkQuickStart } from '../checks.js';
import type { Scenario } from '../harness.js';

export const nodeSdk = `import { trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { DatadogCIPipelineExporter } from 'datadog-ci-pipeline-exporter';

const sdk = new NodeSDK({
  serviceName: 'my-build',
  traceExporter: new DatadogCIPipelineExporter({ endpoint: process.env.DD_CI_PIPELINE_ENDPOINT || undefined }),
});
sdk.start();

const tracer = trace.getTracer('my-build');
await tracer.startActiveSpan('release', { attributes: {
  'ci.level': 'pipeline',
  'ci.url': 'https://ci.example.com/builds/1234',
  'ci.git.repository_url': 'https://github.com/acme/app',
  'ci.git.sha': '0123456789abcdef0123456789abcdef01234567',
  'ci.git.branch': 'main',
  'ci.git.author_email': 'dev@acme.example',
} }, async (pipeline) => {
  await tracer.startActiveSpan('build', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/builds/1234/build' } }, async (job) => {
    await tracer.startActiveSpan('npm ci', { attributes: { 'ci.level': 'step' } }, async (step) => {
      step.end();
    });
    job.end();
  });
  pipeline.end();
});

await sdk.shutdown();
`;

const scenario: Scenario = {
  name: 'exporter: NodeSDK({ traceExporter })',
  legs: ['node20-sdk2', 'node24-sdk3'],
  files: () => ({ 'node-sdk.mjs': nodeSdk }),
  argv: () => ['node-sdk.mjs'],
  // Only the exporter under test: no OTLP metrics or logs exporters from the environment.
  env: () => ({ OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' }),
  check: (run) => checkQuickStart(run),
};
export default scenario;
