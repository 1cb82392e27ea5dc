// Other tools' vocabularies through the live span processor: their levels depend on ancestors, so
// the processor files those traces through the exporter's hierarchy store; the events must be
// exactly those the exporter alone makes of the same spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatadogCIPipelineSpanProcessor } from '../src/index.js';
import { cicdRun } from './fixtures/vocabularies/cicd.js';
import { jenkinsBuild } from './fixtures/vocabularies/jenkins.js';
import { runProducer, type Run } from './fixtures/vocabularies/harness.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const recent = (): number => Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const events = (r: Run): string[] => r.intake.events.map((e) => JSON.stringify(e)).sort();

for (const [name, make] of [
  ['cicd semconv', (t0: number) => [cicdRun(t0)]],
  ['jenkins', (t0: number) => [jenkinsBuild(t0)]],
] as const) {
  test(`${name} through DatadogCIPipelineSpanProcessor: the same events as through the exporter alone`, async (t) => {
    const t0 = recent();
    const alone = await runProducer(t, make(t0), { detectEnvironment: false });
    const live = await runProducer(t, make(t0), { detectEnvironment: false }, (exporter) => new DatadogCIPipelineSpanProcessor(exporter, { scheduledDelayMs: 10 }));
    assert.ok(alone.intake.events.length > 5, 'the fixture makes events');
    assert.deepEqual(events(live), events(alone));
    assert.deepEqual(live.lines, alone.lines);
  });
}
