// Property-based fuzzing of the span side (issue 7), with fast-check: span trees with arbitrary
// `ci.*` values, times, IDs, parent links and broken span objects (test/support/fuzz-spans.ts),
// through a real exporter into the real validating intake. For every input:
//   - no export() call throws, forceFlush() and shutdown() resolve;
//   - every export callback fires exactly once;
//   - every body the intake receives is schema-valid (and keeps the prose rules);
//   - the counters account for every labelled span (README, "Reading the counters"):
//       eventsSent + spooled + queued + Σ dropped + pending = spans carrying ci.level
//                                                            + other objects refused as malformed
//   - no synchronous slice of the exporter (an export() call, one resolution slice) takes more
//     than 100 ms of CPU, for inputs up to 100,000 values (CPU time, not wall time, so that other
//     processes on the machine cannot fail it);
//   - the API key never appears in a logged line or a request body.
//
// Seeded: FUZZ_SEED (default below) and FUZZ_RUNS (default small, for `npm test`); `npm run
// fuzz` runs 20,000. A failure prints fast-check's report: the seed, the path and the shrunk input
// to replay it (FUZZ_SEED=<seed> and fast-check's `path`).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { DROP_REASONS } from '../src/diagnostics.js';
import { startIntake, type Intake } from '../testkit/intake.js';
import { buildSpans, hugeInput, NOW, treePlan } from './support/fuzz-spans.js';
import { SpanStatusCode } from '@opentelemetry/api';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 60));
/** The huge-input property costs ~100× a small one: a hundredth of the runs, at least 4. */
const HUGE_RUNS = Math.max(4, Math.floor(RUNS / 100));
const API_KEY = 'fuzzkey-0123456789abcdef0123456789abcdef';
const STALL_MS = 100;

let intake: Intake;
before(async () => {
  intake = await startIntake();
});
after(() => intake.close());

/** CPU time of each synchronous slice the exporter runs: export() calls and resolution slices. */
function meterSlices(exporter: DatadogCIPipelineExporter): { max: () => number; where: () => string } {
  let max = 0;
  let where = '';
  const wrap = (name: string, target: Record<string, unknown>): void => {
    const original = target[name] as (...a: unknown[]) => unknown;
    target[name] = function (this: unknown, ...args: unknown[]) {
      const c0 = process.cpuUsage();
      try {
        return original.apply(this, args);
      } finally {
        const c = process.cpuUsage(c0);
        const ms = (c.user + c.system) / 1000;
        if (ms > max) {
          max = ms;
          where = name;
        }
      }
    };
  };
  wrap('export', exporter as unknown as Record<string, unknown>);
  wrap('drainSlice', exporter as unknown as Record<string, unknown>);
  return { max: () => max, where: () => where };
}

/** The longest synchronous slice (ms of CPU) of a fresh exporter given `batches`. */
async function slowestSlice(batches: unknown[][]): Promise<number> {
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, apiKey: API_KEY, logger: () => undefined, flushTimeoutMs: 10_000, shutdownTimeoutMs: 10_000 });
  const meter = meterSlices(exporter);
  for (const batch of batches) exporter.export(batch as never, () => undefined);
  await exporter.forceFlush();
  await exporter.shutdown();
  return meter.max();
}

/**
 * fc.check with a report that stays readable: the seed and path to replay it, the error, and the
 * shrunk input clipped (inputs can hold megabytes of generated text).
 */
async function property<T>(prop: fc.IAsyncPropertyWithHooks<T> | fc.IAsyncProperty<T>, numRuns: number, shrink = true): Promise<void> {
  const details = await fc.check(prop, { seed: SEED, numRuns, endOnFailure: !shrink });
  if (!details.failed) return;
  const input = fc.stringify(details.counterexample);
  const err = details.errorInstance;
  throw new Error(
    [
      `property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
      `replay: FUZZ_SEED=${details.seed} (fast-check seed ${details.seed}, path "${details.counterexamplePath ?? ''}")`,
      `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`.slice(0, 4000),
      `input (${input.length} chars): ${input.slice(0, 3000)}${input.length > 3000 ? '…' : ''}`,
    ].join('\n'),
  );
}

/** Runs one input through a fresh exporter and checks every property; throws on a violation. */
async function check(batches: unknown[][], accountable: number): Promise<void> {
  intake.requests.length = 0;
  intake.invalid.length = 0;
  intake.events.length = 0;
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({
    endpoint: intake.endpoint,
    apiKey: API_KEY,
    logger: (l) => lines.push(l),
    flushTimeoutMs: 10_000,
    shutdownTimeoutMs: 10_000,
  });
  const meter = meterSlices(exporter);
  const calls = batches.map(() => 0);
  batches.forEach((batch, i) => {
    // A throw here fails the property.
    exporter.export(batch as never, () => calls[i]!++);
  });
  await exporter.forceFlush();
  await exporter.shutdown();
  // Callbacks fire when their events settle: all have by now, give their promises a few turns.
  for (let i = 0; i < 50 && calls.some((n) => n === 0); i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(calls.filter((n) => n !== 1), [], `export callbacks fired ${JSON.stringify(calls)} times`);

  assert.deepEqual(intake.invalid.map((r) => r.errors.slice(0, 5)), [], 'the intake rejected bodies');

  const c = exporter.getCounters();
  const dropped = DROP_REASONS.reduce((n, r) => n + c.dropped[r], 0);
  const accounted = c.eventsSent + c.spooled + c.queued + dropped + c.pending;
  assert.equal(accounted, accountable, `counters account for ${accounted} of ${accountable} labelled spans: ${JSON.stringify(c)}`);
  assert.equal(c.pending, 0, 'nothing is left pending after shutdown');
  assert.equal(c.queued, 0, 'nothing is left queued after shutdown');

  if (meter.max() > STALL_MS) {
    // Timing on a shared machine is noisy (GC threads count as CPU too, and a loaded machine's
    // CPU is slower per instruction): a slow slice must be slow again, on the same input, in
    // each of four more tries before it counts as a stall.
    const again = [meter.max()];
    for (let i = 0; i < 4 && Math.min(...again) > STALL_MS; i++) again.push(await slowestSlice(batches));
    assert.ok(Math.min(...again) <= STALL_MS, `a synchronous slice (${meter.where()}) took ${again.map((m) => m.toFixed(1)).join(', ')} ms of CPU in ${again.length} tries`);
  }

  for (const l of lines) {
    assert.ok(!l.includes(API_KEY), 'the API key is in a logged line');
    assert.ok(!l.includes('\n') && !l.includes('\r'), `a logged line contains a line break: ${JSON.stringify(l.slice(0, 1500))}`);
    assert.ok(l.length < 5000, `a ${l.length}-character line`);
  }
  for (const r of intake.requests) assert.ok(!JSON.stringify(r.body ?? '').includes(API_KEY), 'the API key is in a request body');
}

test(`span trees with arbitrary ci.* values, times, IDs and broken span objects (seed ${SEED}, ${RUNS} runs)`, { timeout: 600_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
  await property(
    fc.asyncProperty(fc.array(treePlan, { minLength: 1, maxLength: 4 }), async (plans) => {
      const { batches, accountable } = buildSpans(plans);
      await check(batches, accountable);
    }),
    RUNS,
  );
});

test(`inputs of up to 100,000 values: no slice over ${STALL_MS} ms of CPU, one short warning (seed ${SEED}, ${HUGE_RUNS} runs)`, { timeout: 600_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} runs=${HUGE_RUNS}`);
  const now = Math.floor(NOW / 1000);
  await property(
    fc.asyncProperty(hugeInput, fc.constantFrom('pipeline', 'job', 'stage', 'step'), async ({ attributes }, level) => {
      const traceId = 'abcdef0123456789abcdef0123456789';
      const span = (name: string, spanId: string, attrs: Record<string, unknown>, parent?: string): Record<string, unknown> => ({
        name,
        spanContext: () => ({ traceId, spanId, traceFlags: 1 }),
        parentSpanContext: parent ? { traceId, spanId: parent } : undefined,
        startTime: [now - 10, 0],
        endTime: [now - 1, 0],
        status: { code: SpanStatusCode.UNSET },
        attributes: attrs,
        events: [],
        resource: { attributes: {} },
      });
      const root = span('p', '00000000000000a1', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/1' });
      const child = span('c', '00000000000000a2', { 'ci.level': level, 'ci.url': 'https://ci.example.com/2', ...attributes }, '00000000000000a1');
      await check([[child], [root]], 2);
    }),
    HUGE_RUNS,
    // Shrinking a 100,000-value input costs minutes and says little: the kind and size are in the report.
    false,
  );
});
