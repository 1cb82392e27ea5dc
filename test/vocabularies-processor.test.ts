// Other tools' vocabularies through the live span processor: their levels depend on ancestors, so
// the processor files those traces through the exporter's hierarchy store; the events must be
// exactly those the exporter alone makes of the same spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatadogCIPipelineSpanProcessor } from '../src/index.js';
import { cicdRun } from './fixtures/vocabularies/cicd.js';
import { otelCicdActionRun } from './fixtures/vocabularies/github-actions.js';
import { githubReceiverRun } from './fixtures/vocabularies/github-receiver.js';
import { gitlabPipeline } from './fixtures/vocabularies/gitlab-receiver.js';
import { jenkinsBuild } from './fixtures/vocabularies/jenkins.js';
import { runProducer, type Run } from './fixtures/vocabularies/harness.js';
import { produce } from './fixtures/vocabularies/producer.js';
import { otlpExporter, startServe } from './support/otlp-serve.js';
import { BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const recent = (): number => Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const events = (r: Run): string[] => r.intake.events.map((e) => JSON.stringify(e)).sort();

/** Each producer's fixture trace(s), as its own tests build them. */
const PRODUCERS = [
  ['cicd semconv', (t0: number) => [cicdRun(t0)]],
  ['jenkins', (t0: number) => [jenkinsBuild(t0)]],
  ['github actions exporters', (t0: number) => [otelCicdActionRun(t0)]],
  ['github receiver', (t0: number) => githubReceiverRun(t0)],
  ['gitlab receiver', (t0: number) => [gitlabPipeline(t0)]],
] as const;

for (const [name, make] of PRODUCERS) {
  test(`${name} through DatadogCIPipelineSpanProcessor: the same events as through the exporter alone`, async (t) => {
    // One set of batches for both runs (a fixture may number its jobs as it builds them).
    const batches = make(recent());
    const alone = await runProducer(t, batches, { detectEnvironment: false });
    const live = await runProducer(t, batches, { detectEnvironment: false }, (exporter) => new DatadogCIPipelineSpanProcessor(exporter, { scheduledDelayMs: 10 }));
    assert.ok(alone.intake.events.length > 5, 'the fixture makes events');
    assert.deepEqual(events(live), events(alone));
    assert.deepEqual(live.lines, alone.lines);
  });
}

// And through `serve`, where these traces usually live: the producer's spans cross OTLP/HTTP
// (the SDK's protobuf exporter) and the receiver hands them to the same exporter.
for (const [name, make] of PRODUCERS) {
  test(`${name} through serve (OTLP/HTTP protobuf): the same events as through the exporter alone`, async (t) => {
    const batches = make(recent());
    const alone = await runProducer(t, batches, { detectEnvironment: false });
    const serve = await startServe(t, { exporter: { detectEnvironment: false } });
    const unused: SpanExporter = { export: (_s, done) => done({ code: 0 }), shutdown: async () => {} };
    await produce(unused, batches, () => new BatchSpanProcessor(otlpExporter(serve.url, 'proto', false), { scheduledDelayMillis: 3_600_000 }));
    await serve.exporter.forceFlush();
    assert.ok(alone.intake.events.length > 5, 'the fixture makes events');
    assert.deepEqual(serve.intake.invalid, []);
    assert.deepEqual(serve.intake.events.map((e) => JSON.stringify(e)).sort(), events(alone));
  });
}
