// Delivery against a real intake, no faults: batching, headers, concurrency, settlement, lifecycle.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { createDelivery } from '../src/delivery/index.js';
import { startIntake } from '../testkit/intake.js';
import { acceptedNames, fastConfig, jobEvent, jobEvents, namesOf, recordingDiagnostics } from '../testkit/fault-helpers.js';

test('delivers every event once, in bodies within the event and byte caps, with the documented headers', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const maxBatchBytes = 2_000;
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchEvents: 4, maxBatchBytes }), diagnostics);
  const events = jobEvents('basic', 23, { padBytes: 100 });
  const results = await Promise.all([d.send(events.slice(0, 10)), d.send(events.slice(10))]);
  assert.deepEqual(results, [true, true]);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.equal(intake.invalid.length, 0);
  for (const r of intake.requests) {
    assert.ok(r.events.length <= 4, `${r.events.length} events`);
    assert.ok(r.bodyBytes <= maxBatchBytes, `${r.bodyBytes} bytes`);
    assert.equal(r.headers['dd-api-key'], 'test-api-key-0123456789');
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.equal(r.headers['user-agent'], 'datadog-ci-pipeline-exporter-tests');
    assert.equal(r.headers['content-encoding'], undefined);
  }
  const c = diagnostics.counters;
  assert.equal(c.eventsSent, 23);
  assert.equal(c.requests, intake.requests.length);
  assert.equal(c.queued, 0);
  assert.equal(diagnostics.totalDropped(), 0);
  await d.shutdown(1000);
  assert.deepEqual(lines, []);
});

test('no DD-API-KEY header without an API key; gzip bodies when asked', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { apiKey: undefined, gzip: true }), diagnostics);
  assert.equal(await d.send(jobEvents('gz', 50, { padBytes: 200 })), true);
  await d.shutdown(1000);
  assert.equal(intake.acceptedCount(), 50);
  const r = intake.requests[0]!;
  assert.equal(r.headers['dd-api-key'], undefined);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.ok(r.wireBytes < r.bodyBytes / 3, `wire ${r.wireBytes} vs body ${r.bodyBytes}`);
});

test('never more requests in flight than maxConcurrentRequests, and more than one when allowed', { timeout: 15_000 }, async (t) => {
  let inFlight = 0;
  let peak = 0;
  const intake = await startIntake({
    respond: async () => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 40));
      inFlight--;
      return undefined;
    },
  });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchEvents: 2, maxConcurrentRequests: 3 }), diagnostics);
  const sends = [];
  for (let i = 0; i < 10; i++) sends.push(d.send(jobEvents(`c${i}`, 3)));
  assert.deepEqual(new Set(await Promise.all(sends)), new Set([true]));
  assert.equal(peak, 3);
  assert.equal(intake.acceptedCount(), 30);
  await d.shutdown(1000);
});

test('flush waits for everything sent before it; send after shutdown resolves false and is counted', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: () => ({ delayMs: 100 }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchEvents: 5, maxConcurrentRequests: 1 }), diagnostics);
  void d.send(jobEvents('f', 12));
  await d.flush(5_000);
  assert.equal(intake.acceptedCount(), 12);
  assert.equal(diagnostics.counters.queued, 0);
  await d.shutdown(1000);
  assert.equal(await d.send(jobEvents('late', 2)), false);
  assert.equal(diagnostics.counters.dropped.shutdown, 2);
  assert.equal(diagnostics.counters.queued, 0);
  assert.equal(intake.acceptedCount(), 12);
});

test('events already past the age limit, or larger alone than the byte cap, are dropped before sending', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchBytes: 3_000 }), diagnostics);
  const good = jobEvents('ok', 3);
  const old = jobEvent('old', { agoMs: 19 * 3_600_000 });
  const huge = jobEvent('huge', { padBytes: 5_000 });
  assert.equal(await d.send([good[0]!, old, huge, ...good.slice(1)]), false);
  await d.shutdown(1000);
  assert.deepEqual(acceptedNames(intake), namesOf(good));
  assert.equal(intake.invalid.length, 0);
  assert.equal(diagnostics.counters.dropped.too_old, 1);
  assert.equal(diagnostics.counters.dropped.too_large, 1);
  assert.ok(lines.some((l) => l.includes('job "old"') && /18 h/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('job "huge"') && l.includes('3000-byte')), lines.join('\n'));
});

test("the exporter's own HTTP requests run with tracing suppressed", { timeout: 15_000 }, async (t) => {
  // A minimal context manager, so that context.with() actually carries a context.
  const als = new AsyncLocalStorage<Context>();
  const manager: ContextManager = {
    active: () => als.getStore() ?? ROOT_CONTEXT,
    with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.call(thisArg, ...args)),
    bind: (_ctx, target) => target,
    enable() {
      return this;
    },
    disable() {
      return this;
    },
  };
  assert.ok(context.setGlobalContextManager(manager));
  const seen: boolean[] = [];
  const onCreate = (): void => void seen.push(isTracingSuppressed(context.active()));
  subscribe('undici:request:create', onCreate);
  t.after(() => {
    unsubscribe('undici:request:create', onCreate);
    context.disable();
  });
  const intake = await startIntake();
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint), diagnostics);
  await d.send(jobEvents('sup', 2));
  await d.shutdown(1000);
  assert.ok(seen.length >= 1);
  assert.deepEqual(new Set(seen), new Set([true]));
});

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** Runs a script in a child node (with tsx) and reports how long it lived and what it printed. */
function runChild(script: string): Promise<{ ms: number; code: number | null; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'delivery-child-'));
  made.push(dir);
  const file = join(dir, 'child.mts');
  writeFileSync(file, script);
  const started = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', file], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', (code) => resolve({ ms: Date.now() - started, code, out }));
  });
}

const imports = `
import { createDelivery } from ${JSON.stringify(new URL('../src/delivery/index.ts', import.meta.url).href)};
import { Diagnostics } from ${JSON.stringify(new URL('../src/diagnostics.ts', import.meta.url).href)};
import { fastConfig, jobEvents } from ${JSON.stringify(new URL('../testkit/fault-helpers.ts', import.meta.url).href)};
import { createServer } from 'node:net';
// A port nobody listens on: connections are refused at once.
const srv = createServer(); await new Promise((r) => srv.listen(0, '127.0.0.1', r));
const port = srv.address().port; await new Promise((r) => srv.close(r));
const endpoint = 'http://127.0.0.1:' + port + '/api/v2/ci/pipeline';
`;

test('retry timers do not keep the process alive when nobody awaits delivery', { timeout: 15_000 }, async () => {
  const r = await runChild(
    imports +
      `const d = createDelivery(fastConfig(endpoint, { retry: { initialDelayMs: 20_000, maxDelayMs: 20_000, deadlineMs: 60_000 } }), new Diagnostics(() => {}));
void d.send(jobEvents('x', 3));
setTimeout(() => console.log('alive'), 300);`,
  );
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /alive/);
  assert.ok(r.ms < 5_000, `lived ${r.ms} ms`);
});

test('an awaited shutdown completes (and writes the spool) even when only retry timers are pending', { timeout: 15_000 }, async () => {
  const spoolDir = mkdtempSync(join(tmpdir(), 'delivery-spool-child-'));
  made.push(spoolDir);
  const r = await runChild(
    imports +
      `const d = createDelivery(fastConfig(endpoint, { spoolDir: ${JSON.stringify(spoolDir)}, retry: { initialDelayMs: 20_000, maxDelayMs: 20_000, deadlineMs: 60_000 } }), new Diagnostics(() => {}));
void d.send(jobEvents('x', 3));
await new Promise((r) => setTimeout(r, 100));
await d.shutdown(700);
console.log('shutdown returned');`,
  );
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /shutdown returned/);
  assert.equal(readdirSync(spoolDir).filter((n) => n.endsWith('.json')).length, 1);
});
