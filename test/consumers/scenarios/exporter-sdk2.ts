// The README's SDK 2.x usage (BasicTracerProvider + BatchSpanProcessor(exporter)), as an ES
// module and as CommonJS, on Node 20 with @opentelemetry/api 1.9.
import { checkQuickStart } from '../checks.js';
import type { Scenario } from '../harness.js';

const attrs = `{
  'ci.level': 'pipeline',
  'ci.url': 'https://ci.example.com/builds/1234',
  'ci.git.repository_url': 'https://github.com/acme/app',
  'ci.git.sha': '0123456789abcdef0123456789abcdef01234567',
  'ci.git.branch': 'main',
  'ci.git.author_email': 'dev@acme.example',
}`;

const body = `
const provider = new BasicTracerProvider({
  spanProcessors: [new BatchSpanProcessor(new DatadogCIPipelineExporter({ endpoint: process.env.DD_CI_PIPELINE_ENDPOINT }))],
});
const tracer = provider.getTracer('my-build');
const pipeline = tracer.startSpan('release', { attributes: ${attrs} });
const job = tracer.startSpan('build', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/builds/1234/build' } },
  trace.setSpan(ROOT_CONTEXT, pipeline));
const step = tracer.startSpan('npm ci', { attributes: { 'ci.level': 'step' } }, trace.setSpan(ROOT_CONTEXT, job));
step.end();
job.end();
pipeline.end();
`;

export const esm = `import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter } from 'datadog-ci-pipeline-exporter';
${body}
await provider.shutdown();
`;

export const cjs = `const { ROOT_CONTEXT, trace } = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { DatadogCIPipelineExporter } = require('datadog-ci-pipeline-exporter');
${body}
provider.shutdown().catch((err) => { console.error(err); process.exitCode = 1; });
`;

const scenarios: Scenario[] = [
  {
    name: 'exporter: SDK 2.x quick start as an ES module',
    legs: ['node20-sdk2'],
    files: () => ({ 'sdk2.mjs': esm }),
    argv: () => ['sdk2.mjs'],
    check: (run) => checkQuickStart(run),
  },
  {
    name: 'exporter: SDK 2.x quick start as CommonJS',
    legs: ['node20-sdk2'],
    files: () => ({ 'sdk2.cjs': cjs }),
    argv: () => ['sdk2.cjs'],
    check: (run) => checkQuickStart(run),
  },
];
export default scenarios;
