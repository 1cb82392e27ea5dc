// A TypeScript consumer, type-checked by tsc (strict, NodeNext resolution) against the installed
// tarball's declarations: index.d.ts from an ES module (.mts), index.d.cts from CommonJS (.cts).
// It assigns the exporter where the SDK wants a SpanExporter and hands it the SDK's own
// ReadableSpan[]; the @ts-expect-error lines fail the check if the declarations resolved to `any`.
import type { Leg } from './harness.js';

function source(leg: Leg): string {
  const sdk3 = leg.sdkPackage === '@opentelemetry/sdk-trace';
  const provider = sdk3 ? 'TracerProvider' : 'BasicTracerProvider';
  const processor = sdk3 ? 'new BatchSpanProcessor({ exporter })' : 'new BatchSpanProcessor(exporter)';
  return `import { ${provider}, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '${leg.sdkPackage}';
${leg.nodeSdk ? "import { NodeSDK } from '@opentelemetry/sdk-node';\n" : ''}import {
  DatadogCIPipelineExporter,
  DATADOG_SITES,
  VERSION,
  type Counters,
  type DatadogCIPipelineExporterOptions,
  type DatadogSite,
  type Level,
} from 'datadog-ci-pipeline-exporter';

const options: DatadogCIPipelineExporterOptions = {
  site: 'datadoghq.eu',
  providerName: 'custom',
  maxBatchEvents: 500,
  retry: { deadlineMs: 60_000 },
  logger: (line: string) => void line,
};
const exporter: SpanExporter = new DatadogCIPipelineExporter(options);
export const provider = new ${provider}({ spanProcessors: [${processor}] });
${leg.nodeSdk ? 'export const sdk = new NodeSDK({ traceExporter: new DatadogCIPipelineExporter() });\n' : ''}
declare const spans: ReadableSpan[];
exporter.export(spans, (result) => void result.code);
const counters: Counters = new DatadogCIPipelineExporter().getCounters();
const site: DatadogSite = DATADOG_SITES[0];
const level: Level = 'step';
const version: string = VERSION;
export { counters, site, level, version };

// @ts-expect-error maxBatchEvents is a number
new DatadogCIPipelineExporter({ maxBatchEvents: 'many' });
// @ts-expect-error not an option
new DatadogCIPipelineExporter({ apiKeyy: 'x' });
`;
}

export function typescriptConsumer(leg: Leg): Record<string, string> {
  const tsconfig = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      // The SDK's own declarations are not under test (some need @types/node); ours are, through
      // the consumer code above.
      skipLibCheck: true,
      types: [],
    },
    files: ['consumer.mts', 'consumer.cts'],
  };
  const src = source(leg);
  return { 'tsconfig.json': JSON.stringify(tsconfig, null, 2), 'consumer.mts': src, 'consumer.cts': src };
}
