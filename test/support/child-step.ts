// A child process of test/propagation.test.ts: what a build tool's step would do. Its exporter
// gets no options at all: the endpoint comes from DD_CI_PIPELINE_ENDPOINT, the parent from the
// env carriers (parentFromEnv).
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor, parentFromEnv } from '../../src/index.js';

const provider = new BasicTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'child' }),
  spanProcessors: [new DatadogCIPipelineSpanProcessor(new DatadogCIPipelineExporter())],
});
const { context, attributes } = parentFromEnv();
const step = provider.getTracer('child').startSpan(process.argv[2] ?? 'child step', { attributes: { ...attributes, 'ci.level': 'step' } }, context);
step.end();
await provider.shutdown();
