// Delivery seen from the exporter, with real providers: the spool carries a build across two
// processes' worth of exporters, the shutdown summary line, the shutdown deadline through the
// SDK, and a CI process that exits on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIntake } from '../testkit/intake.js';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { ci, exportDirect, recordTree, runTree, startHarness, assertAllValid, namesOf } from './support/trace-helpers.js';

const fastRetry = { initialDelayMs: 10, maxDelayMs: 50, deadlineMs: 60_000 };

test('endpoint down at shutdown: the build is spooled; the next exporter with the same spoolDir delivers it', { timeout: 30_000 }, async (t) => {
  const spoolDir = mkdtempSync(join(tmpdir(), 'dd-spool-'));
  t.after(() => rmSync(spoolDir, { recursive: true, force: true }));

  const down = await startHarness(t, {
    exporter: { spoolDir, retry: fastRetry, shutdownTimeoutMs: 1_500 },
    intake: { respond: () => ({ status: 503, body: { errors: [{ detail: 'down for maintenance' }] } }) },
  });
  runTree(down.tracer, {
    name: 'release',
    attributes: ci('pipeline', 'release'),
    children: [{ name: 'build', attributes: ci('job', 'build'), children: [{ name: 'compile', attributes: ci('step', 'compile') }] }],
  });
  const started = Date.now();
  await down.close();
  assert.ok(Date.now() - started < 5_000, 'shutdown kept its deadline');
  assert.equal(down.intake.events.length, 0);
  const c = down.exporter.getCounters();
  assert.equal(c.spooled, 3);
  assert.equal(c.eventsSent, 0);
  assert.ok(readdirSync(spoolDir).some((f) => f.endsWith('.json')), `spool files: ${readdirSync(spoolDir).join(', ')}`);
  // Nothing was lost, so no "dropped" summary; the spool is said once.
  assert.ok(!down.lines.some((l) => /dropped \d+ event/.test(l)), down.lines.join('\n'));

  // The next run: same spoolDir, endpoint up. It sends the spooled build before its own.
  const up = await startHarness(t, { exporter: { spoolDir, retry: fastRetry } });
  runTree(up.tracer, { name: 'next', attributes: ci('pipeline', 'next') });
  await up.flush();
  await up.intake.waitForEvents(4, 10_000);
  assert.deepEqual(namesOf(up.intake).sort(), ['build', 'compile', 'next', 'release']);
  const compile = up.intake.events.find((e) => e.attributes.resource.name === 'compile')!.attributes.resource;
  const release = up.intake.events.find((e) => e.attributes.resource.name === 'release')!.attributes.resource;
  assert.equal(compile.pipeline_unique_id, release.unique_id);
  assertAllValid(up.intake);
  await up.close();
  assert.deepEqual(
    readdirSync(spoolDir).filter((f) => f.endsWith('.json')),
    [],
    'delivered spool files are removed',
  );
});

test('shutdown prints one summary line when something was dropped, naming the reasons', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t);
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'no-url', attributes: { 'ci.level': 'job' } },
      { name: 'no-url-2', attributes: { 'ci.level': 'job' } },
      { name: 'ok', attributes: ci('job', 'ok') },
    ],
  });
  await h.close();
  const summary = h.lines.filter((l) => /^dropped \d+ event/.test(l));
  assert.equal(summary.length, 1, h.lines.join('\n'));
  assert.match(summary[0]!, /^dropped 2 event\(s\) \(invalid=2\); sent 2,/);
});

test('no summary line when nothing was dropped', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t);
  runTree(h.tracer, { name: 'p', attributes: ci('pipeline', 'p'), children: [{ name: 'j', attributes: ci('job', 'j') }] });
  await h.close();
  assert.deepEqual(h.lines, []);
  assert.equal(h.intake.events.length, 2);
});

test('provider.shutdown() through the SDK keeps shutdownTimeoutMs against an endpoint that never answers', { timeout: 30_000 }, async (t) => {
  const h = await startHarness(t, {
    exporter: { shutdownTimeoutMs: 1_000, flushTimeoutMs: 1_000, requestTimeoutMs: 60_000, retry: fastRetry },
    intake: { respond: () => ({ hang: true }) },
  });
  runTree(h.tracer, { name: 'p', attributes: ci('pipeline', 'p') });
  const started = Date.now();
  await h.provider.shutdown();
  const took = Date.now() - started;
  // The processor's flush waits for the export callback (≤ flushTimeoutMs), then the exporter's
  // shutdown has its own deadline.
  assert.ok(took < 4_000, `shutdown took ${took} ms`);
  const c = h.exporter.getCounters();
  assert.equal(c.dropped.shutdown + c.dropped.delivery_failed, 1);
  assert.ok(h.lines.some((l) => /^shutdown: 1 event\(s\) not delivered/.test(l)), h.lines.join('\n'));
});

test('a CI process using the exporter exits by itself after shutdown, even with the endpoint down', { timeout: 30_000 }, async (t) => {
  const intake = await startIntake({ respond: () => ({ status: 503 }) });
  t.after(() => intake.close());
  const script = `
    import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
    import { DatadogCIPipelineExporter } from './src/index.js';
    const exporter = new DatadogCIPipelineExporter({ endpoint: process.env.ENDPOINT, shutdownTimeoutMs: 800, retry: { initialDelayMs: 5000, maxDelayMs: 5000, deadlineMs: 600000 } });
    const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1 })] });
    const span = provider.getTracer('t').startSpan('p', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/1' } });
    span.end();
    await new Promise((r) => setTimeout(r, 300)); // the export is now waiting out a 5 s backoff
    await provider.shutdown();
  `;
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { ...process.env, ENDPOINT: intake.endpoint, DD_API_KEY: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.on('exit', resolve);
  });
  assert.equal(code, 0);
  assert.ok(Date.now() - started < 10_000, `the process lingered ${Date.now() - started} ms`);
});

test('a pipeline that releases more descendants than maxQueuedEvents: resolved in slices with backpressure, nothing dropped', { timeout: 60_000 }, async (t) => {
  const steps = 3_000;
  const spans = await recordTree({
    name: 'big',
    attributes: ci('pipeline', 'big'),
    children: [{ name: 'job', attributes: ci('job', 'job'), children: Array.from({ length: steps }, (_, i) => ({ name: `s${i}`, attributes: { 'ci.level': 'step' } })) }],
  });
  const intake = await startIntake({ validate: false });
  t.after(() => intake.close());
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, maxQueuedEvents: 400, maxBatchEvents: 100, maxConcurrentRequests: 1, logger: (l) => lines.push(l) });
  // Children first, the pipeline last: its arrival releases everything at once.
  for (let i = 0; i < spans.length; i += 512) await exportDirect(exporter, spans.slice(i, i + 512));
  await exporter.shutdown();
  const c = exporter.getCounters();
  assert.equal(c.dropped.queue_overflow, 0, lines.join('\n'));
  assert.equal(c.eventsSent, steps + 2);
  assert.equal(intake.acceptedCount(), steps + 2);
});

test('after an outage, export() waits for delivery again even if a batch had a rejected event', { timeout: 30_000 }, async (t) => {
  let first = true;
  const intake = await startIntake({
    respond: (r) => {
      if (first) {
        first = false;
        return { status: 503 };
      }
      if (r.events.some((e) => e.attributes.resource.name === 'bad')) return { status: 400, body: { errors: [{ detail: 'rejected for the test' }] } };
      return { delayMs: 200 };
    },
  });
  t.after(() => intake.close());
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, retry: fastRetry, logger: () => undefined });
  t.after(() => exporter.shutdown());
  // A 503 (the endpoint is in trouble), then the retried batch: 'bad' rejected, the rest delivered.
  await exportDirect(exporter, await recordTree({ name: 'p1', attributes: ci('pipeline', 'p1'), children: [{ name: 'bad', attributes: ci('job', 'bad') }] }));
  await exporter.forceFlush();
  assert.equal(exporter.getCounters().dropped.rejected, 1);
  assert.ok(namesOf(intake).includes('p1'));
  // The endpoint works again: the next export's callback means "delivered" again.
  await exportDirect(exporter, await recordTree({ name: 'p2', attributes: ci('pipeline', 'p2') }));
  assert.ok(namesOf(intake).includes('p2'), 'the callback came before p2 was delivered');
});

test('one export() call: its events go out in bodies of up to 1,000, not one per 500-span slice', { timeout: 30_000 }, async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined });
  t.after(() => exporter.shutdown());
  const steps = 1_500;
  const children = Array.from({ length: steps }, (_, i) => ({ name: `s${i}`, attributes: ci('step', `s${i}`) }));
  const spans = await recordTree({ name: 'p', attributes: ci('pipeline', 'p'), children: [{ name: 'j', attributes: ci('job', 'j'), children }] });
  // The pipeline span ends last: the whole call is resolved in slices after it arrives.
  await exportDirect(exporter, spans);
  // The callback still means "delivered".
  assert.equal(intake.acceptedCount(), steps + 2);
  assert.deepEqual(
    intake.requests.map((r) => r.events.length),
    [1000, steps + 2 - 1000],
  );
  // A second call's few events are not held back waiting for more.
  await exportDirect(exporter, await recordTree({ name: 'q', attributes: ci('pipeline', 'q') }));
  assert.equal(intake.acceptedCount(), steps + 3);
});
