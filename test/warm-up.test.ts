// The build warm-up (src/warm-up.ts): synthetic pipelines through the exporter's whole path a
// turn after construction, so that a short-lived process does not compile that path after its
// last span. It must really run the path (its body is one the official schema accepts), and it
// must leave no trace: nothing sent, counted or said, and the exporter's own events unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { context, trace } from '@opentelemetry/api';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { validateBody } from '../src/intake/validate.js';
import { pipelinesWarmed, warmUpBody } from '../src/warm-up.js';
import { startIntake } from '../testkit/intake.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('build warm-up: its pipeline goes through filing, the hierarchy, mapping, validation and serialization into a body the official schema accepts', () => {
  const resolved = resolveOptions({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'k'.repeat(32), service: 'svc' });
  assert.ok(resolved.ok);
  const body = warmUpBody(resolved.options);
  assert.ok(body, 'the warm-up produced no body: its spans did not make it through the path');
  const parsed = JSON.parse(body.toString('utf8')) as { data: Array<{ attributes: { resource: { level: string; status: string } } }> };
  // Every level, and a failed step (the error branch of the mapping).
  assert.deepEqual(
    parsed.data.map((e) => `${e.attributes.resource.level}:${e.attributes.resource.status}`).sort(),
    ['job:success', 'pipeline:success', 'stage:success', 'step:error', 'step:success'],
  );
  const { problems } = validateBody(parsed, Date.now());
  assert.deepEqual(problems, []);
});

test('build warm-up: 20 pipelines in later turns; nothing sent, counted or said, and the real events are unchanged', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const said: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, apiKey: 'k'.repeat(32), service: 'real-service', logger: (m: string) => said.push(m) });
  t.after(() => exporter.shutdown());
  assert.equal(pipelinesWarmed, 0, 'nothing runs inside the constructor');
  for (let i = 0; i < 200 && pipelinesWarmed < 20; i++) await turn();
  assert.equal(pipelinesWarmed, 20);
  for (let i = 0; i < 5; i++) await turn();
  assert.equal(pipelinesWarmed, 20, 'once per process');
  assert.equal(intake.requests.length, 0);
  const c = exporter.getCounters();
  assert.equal(c.spansReceived + c.eventsReady + c.eventsSent + c.requests + c.eventsFixed, 0);
  assert.deepEqual(Object.values(c.dropped).filter((n) => n > 0), []);
  assert.deepEqual(said, []);

  // The exporter's own pipeline after it: the memos the warm-up touched (shared members, the
  // envelope, time strings) hold nothing of it.
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('t');
  const p = tracer.startSpan('real pipeline', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/1' } });
  const pc = trace.setSpan(context.active(), p);
  const j = tracer.startSpan('real job', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example/1/j' } }, pc);
  tracer.startSpan('real step', { attributes: { 'ci.level': 'step' } }, trace.setSpan(pc, j)).end();
  j.end();
  p.end();
  await provider.forceFlush();
  await intake.waitForEvents(3);
  const text = JSON.stringify(intake.events);
  assert.doesNotMatch(text, /warm-up|ci\.invalid|git\.invalid/);
  assert.deepEqual(intake.events.map((e) => e.attributes.resource.name).sort(), ['real job', 'real pipeline', 'real step']);
  for (const e of intake.events) assert.equal(e.attributes.service, 'real-service');
});

test('build warm-up: skipped when skipBuildWarmUp() comes first (the run command)', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const code = `
    import * as w from './src/warm-up.ts';
    import { DatadogCIPipelineExporter } from './src/index.ts';
    w.skipBuildWarmUp();
    new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'k', service: 's' });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    process.stdout.write(String(w.pipelinesWarmed));
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0');
});
