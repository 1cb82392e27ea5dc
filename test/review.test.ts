// Regression tests from a code review: each states a behaviour the README or the issues
// promise, found broken once (a proxy setting that threw, a clipped key in a log line, a spool
// claim of a same-PID run, released spans evicted, forceFlush/shutdown not waiting for or not
// pacing the pump, memory pinned behind one waiting span, the shutdown deadline overrun).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { createDelivery } from '../src/delivery/index.js';
import { Spool } from '../src/delivery/spool.js';
import { PendingStore } from '../src/hierarchy/pending-store.js';
import type { Lineage, SpanData } from '../src/mapping/transform.js';
import { startIntake } from '../testkit/intake.js';
import { acceptedNames, fastConfig, jobEvents, namesOf, recordingDiagnostics } from '../testkit/fault-helpers.js';
import { ci, exportDirect, recordTree, type SpanSpec } from './support/trace-helpers.js';

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'review-spool-'));

/** A pipeline with `n` steps directly under it; recorded children first (end order). */
function pipelineSpec(name: string, n: number): SpanSpec {
  return {
    name,
    attributes: ci('pipeline', name),
    children: Array.from({ length: n }, (_, i) => ({ name: `${name}-step-${i}`, attributes: ci('step', `${name}-step-${i}`) })),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. A malformed proxy environment variable throws out of the constructor into the host.
// ---------------------------------------------------------------------------------------------
test(
  'a malformed HTTPS_PROXY (curl-style "host:port") does not throw out of new DatadogCIPipelineExporter()',
  async () => {
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = 'proxy.corp.example:3128';
    const lines: string[] = [];
    try {
      let exporter: DatadogCIPipelineExporter | undefined;
      assert.doesNotThrow(() => {
        exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', logger: (l) => lines.push(l) });
      });
      await exporter?.shutdown();
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
    }
  },
);

// ---------------------------------------------------------------------------------------------
// 2. Part of the API key leaks when the server echoes it near the 500-character clip.
// ---------------------------------------------------------------------------------------------
test(
  'a server detail that echoes the API key around character 500: no part of the key reaches the log',
  { timeout: 15_000 },
  async (t) => {
    const apiKey = '0123456789abcdef0123456789abcdef';
    const intake = await startIntake({
      respond: (r) => ({ status: 400, body: { errors: [{ detail: `${'x'.repeat(480)}${String(r.headers['dd-api-key'])}` }] } }),
    });
    t.after(() => intake.close());
    const { diagnostics, lines } = recordingDiagnostics();
    const d = createDelivery(fastConfig(intake.endpoint, { apiKey, maxConcurrentRequests: 1 }), diagnostics);
    await d.send(jobEvents('echo', 1));
    await d.shutdown(1000);
    assert.equal(diagnostics.counters.dropped.rejected, 1);
    const log = lines.join('\n');
    assert.ok(!log.includes(apiKey.slice(0, 16)), `log holds the first 16 characters of the key:\n${log.slice(0, 700)}`);
  },
);

// ---------------------------------------------------------------------------------------------
// 3. A claim left by a dead process that had our PID (containers: PID 1 every run) is never sent.
// ---------------------------------------------------------------------------------------------
test(
  'a spool file claimed by a crashed earlier run with the same PID (containers) is picked up again',
  { timeout: 15_000 },
  async (t) => {
    const spoolDir = tempDir();
    const events = jobEvents('same-pid', 3);
    const name = new Spool(spoolDir, { movedAside: () => undefined }).write(events);
    // What a previous run (same PID, e.g. PID 1 in a container) left when it died mid-claim.
    renameSync(join(spoolDir, name), join(spoolDir, `${name}.claimed-${process.pid}-0123456789ab`));
    const intake = await startIntake();
    t.after(() => intake.close());
    const { diagnostics } = recordingDiagnostics();
    const d = createDelivery(fastConfig(intake.endpoint, { spoolDir }), diagnostics);
    await d.flush(2_000);
    await d.shutdown(1_000);
    assert.deepEqual(acceptedNames(intake), namesOf(events), `left in the spool: ${readdirSync(spoolDir).join(', ')}`);
  },
);

// ---------------------------------------------------------------------------------------------
// 4. Work released by a pipeline but not yet drained by the pump counts as "held" and is evicted.
// ---------------------------------------------------------------------------------------------
test(
  'descendants released by their pipeline are not evicted as pending_overflow while the pump has not drained them yet',
  { timeout: 20_000 },
  async (t) => {
    const a = await recordTree(pipelineSpec('A', 500));
    const bAll = await recordTree(pipelineSpec('B', 200));
    const bSteps = bAll.filter((s) => s.name !== 'B'); // B's pipeline has not ended yet
    const intake = await startIntake();
    t.after(() => intake.close());
    const lines: string[] = [];
    const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: (l) => lines.push(l), maxPendingSpans: 600 });
    t.after(() => exporter.shutdown());
    await exportDirect(exporter, [...a, ...bSteps]);
    await exporter.forceFlush();
    const c = exporter.getCounters();
    // Only B's 200 steps ever wait for an ancestor: 200 ≤ 600.
    assert.equal(c.dropped.pending_overflow, 0, lines.join('\n'));
    assert.equal(intake.events.filter((e) => e.attributes.resource.name.startsWith('A')).length, 501);
  },
);

// ---------------------------------------------------------------------------------------------
// 5. exporter.forceFlush() returns while the pump still holds resolvable work.
// ---------------------------------------------------------------------------------------------
test(
  'exporter.forceFlush() resolves only when every event that can be emitted so far is delivered',
  { timeout: 20_000 },
  async (t) => {
    const spans = await recordTree(pipelineSpec('P', 1000));
    const intake = await startIntake({ respond: () => ({ delayMs: 20 }) });
    t.after(() => intake.close());
    const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined, maxQueuedEvents: 100, maxBatchEvents: 50 });
    t.after(() => exporter.shutdown());
    const exported = exportDirect(exporter, spans as ReadableSpan[]);
    await exporter.forceFlush();
    const atFlush = intake.acceptedCount();
    await exported;
    assert.equal(atFlush, 1001, `forceFlush() returned with ${atFlush} of 1001 events delivered`);
  },
);

// ---------------------------------------------------------------------------------------------
// 6. shutdown() while the pump is pacing itself drains everything at once into the queue.
// ---------------------------------------------------------------------------------------------
test(
  'shutdown() during a paced pump does not overflow the queue of a healthy endpoint',
  { timeout: 20_000 },
  async (t) => {
    const spans = await recordTree(pipelineSpec('S', 1000));
    const intake = await startIntake({ respond: () => ({ delayMs: 20 }) });
    t.after(() => intake.close());
    const exporter = new DatadogCIPipelineExporter({
      endpoint: intake.endpoint,
      logger: () => undefined,
      maxQueuedEvents: 100,
      maxBatchEvents: 50,
      shutdownTimeoutMs: 15_000,
    });
    // The BatchSpanProcessor calls exporter.shutdown() without waiting for an export() in flight.
    const exported = exportDirect(exporter, spans as ReadableSpan[]);
    await exporter.shutdown();
    await exported;
    const c = exporter.getCounters();
    assert.equal(c.dropped.queue_overflow, 0);
    assert.equal(intake.acceptedCount(), 1001);
  },
);

// ---------------------------------------------------------------------------------------------
// 7. The held-order FIFO grows without bound behind one long-waiting span.
// ---------------------------------------------------------------------------------------------
function plainSpan(traceId: string, spanId: string, parent: string | undefined, level?: string): SpanData {
  const now = Date.now();
  return {
    name: `${level ?? 'span'}-${spanId}`,
    spanContext: () => ({ traceId, spanId }),
    parentSpanContext: parent ? { spanId: parent, isRemote: false } : undefined,
    startTime: [Math.floor(now / 1000) - 1, 0],
    endTime: [Math.floor(now / 1000), 0],
    status: { code: SpanStatusCode.UNSET },
    attributes: level ? { 'ci.level': level } : {},
    events: [],
    resource: { attributes: {} },
  };
}

test(
  'PendingStore memory stays bounded while one span waits (held-order entries ≤ about maxPendingSpans)',
  () => {
    const store = new PendingStore(
      { maxPendingSpans: 100, maxRememberedSpans: 100, maxAgeMs: 18 * 3_600_000 },
      { resolve: (_s, _l, inherited: Lineage) => inherited, evict: () => undefined },
    );
    // One step whose parent never ends (a hung job): legitimately held.
    store.add(plainSpan('f'.repeat(32), '1'.repeat(16), '2'.repeat(16)), 'step');
    // Then 50,000 ordinary pipelines, each step arriving before its pipeline.
    for (let i = 0; i < 50_000; i++) {
      const traceId = i.toString(16).padStart(32, '0');
      store.add(plainSpan(traceId, 'b'.repeat(16), 'a'.repeat(16)), 'step');
      store.add(plainSpan(traceId, 'a'.repeat(16), undefined), 'pipeline');
    }
    assert.equal(store.pendingCount, 1);
    const fifo = (store as unknown as { heldOrder: { items: unknown[]; head: number } }).heldOrder;
    const retained = fifo.items.length - fifo.head;
    assert.ok(retained <= 100 + 2048, `heldOrder retains ${retained} nodes for 1 held span`);
  },
);

// ---------------------------------------------------------------------------------------------
// 8. A late child of a parent forgotten past maxRememberedSpans: held, then "orphaned".
// ---------------------------------------------------------------------------------------------
// Documented limit (README, ARCHITECTURE): forgetting is what bounds memory, so such a step is
// orphaned; what matters is that the message points at maxRememberedSpans.
test(
  'a step that ends after its job, once the job is forgotten (maxRememberedSpans): orphaned, and the message says which option to raise',
  { timeout: 15_000 },
  async (t) => {
    const intake = await startIntake();
    t.after(() => intake.close());
    const lines: string[] = [];
    const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: (l) => lines.push(l), maxRememberedSpans: 5 });
    const spans = await recordTree({
      name: 'pipe',
      attributes: ci('pipeline', 'pipe'),
      children: [{ name: 'job', attributes: ci('job', 'job'), children: [{ name: 'late-step', attributes: ci('step', 'late-step') }] }],
    });
    const late = spans.find((s) => s.name === 'late-step')!;
    await exportDirect(exporter, spans.filter((s) => s !== late));
    // Other builds' spans resolve meanwhile, pushing pipe and job out of memory.
    await exportDirect(exporter, await recordTree(pipelineSpec('other', 20)));
    await exportDirect(exporter, [late]);
    await exporter.shutdown();
    assert.equal(exporter.getCounters().dropped.orphaned, 1, lines.join('\n'));
    assert.ok(lines.some((l) => /late-step.*raise maxRememberedSpans/.test(l)), lines.join('\n'));
  },
);

// ---------------------------------------------------------------------------------------------
// 9. shutdown() overruns shutdownTimeoutMs by the time it spends resolving held work.
// ---------------------------------------------------------------------------------------------
test(
  'shutdown() returns within shutdownTimeoutMs even with a large pipeline still being resolved',
  { timeout: 60_000 },
  async (t) => {
    const spans = await recordTree(pipelineSpec('big', 100_000));
    const intake = await startIntake({ respond: () => ({ hang: true }), validate: false });
    t.after(() => intake.close());
    const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined, shutdownTimeoutMs: 200 });
    exporter.export(spans as ReadableSpan[], () => undefined);
    const started = Date.now();
    await exporter.shutdown();
    const elapsed = Date.now() - started;
    // Slack for a loaded machine; without the deadline, resolving 100,000 spans takes over a second.
    assert.ok(elapsed <= 200 + 400, `shutdown() took ${elapsed} ms with shutdownTimeoutMs 200`);
  },
);
