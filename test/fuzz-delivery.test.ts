// Property-based fuzzing of the exporter's boundary and delivery side (issue 7), with fast-check:
//
// 1. Arbitrary options (every JSON type per option, huge, negative, NaN, fractional, null, a
//    logger that throws or rejects): the constructor never throws, every message is one safe
//    line without the API key, export() calls back once, shutdown() resolves.
// 2. Real spans through a real intake that answers with a random sequence of faults (5xx, 429
//    with Retry-After, 413, 400 for some events, resets, slow answers, hangs past the timeout,
//    401, bodies echoing the key): nothing throws or rejects, every export callback fires exactly
//    once, every body the intake receives is schema-valid and free of the key, the counters
//    account for every event, and shutdown() keeps its deadline.
//
// Seeded and bounded: FUZZ_SEED (default: fixed in `npm test`, random under `npm run fuzz`),
// FUZZ_RUNS (option runs; the fault runs are a fiftieth, each costs real requests). A failure
// names its seed: re-run with FUZZ_SEED=<seed> FUZZ_RUNS=<n> to replay it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../src/index.js';
import { MAX_TIMER_MS } from '../src/delivery/timers.js';
import { DROP_REASONS, MAX_LINE } from '../src/diagnostics.js';
import { resolveOptions } from '../src/options.js';
import { startIntake, type IntakeAction, type IntakeRequest } from '../testkit/intake.js';
import { ci, recordTree, type SpanSpec } from './support/trace-helpers.js';

const LONG = process.env.FUZZ_RUNS !== undefined;
const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : LONG ? Date.now() % 2 ** 31 : 7;
const OPTION_RUNS = LONG ? Math.max(1, Number(process.env.FUZZ_RUNS)) : 150;
const FAULT_RUNS = LONG ? Math.max(1, Math.ceil(Number(process.env.FUZZ_RUNS) / 50)) : 12;
/** Slack over shutdownTimeoutMs for a machine under load (the deadline itself is the exporter's). */
const SHUTDOWN_MARGIN_MS = 2_000;

const KEY = 'fuzz0123456789abcdef0123456789ab';

/** fast-check's settings: a failure is reported with its seed; shrinking only in long runs. */
function params<T>(numRuns: number): fc.Parameters<T> {
  return { seed: SEED, numRuns, endOnFailure: !LONG, includeErrorInReport: true };
}

/** The first 8-character piece of `key` found in `text`. */
function keyPieces(text: string, key: string | null = KEY): string | undefined {
  if (key === null) return undefined;
  for (let i = 0; i + 8 <= key.length; i++) if (text.includes(key.slice(i, i + 8))) return key.slice(i, i + 8);
  return undefined;
}

/** Every logger line: one line, bounded, no piece of the key. */
function assertSafeLines(lines: readonly string[], key: string | null = KEY): void {
  for (const l of lines) {
    assert.equal(typeof l, 'string');
    assert.ok(!/[\n\r\u2028\u2029]/.test(l), `a line break in a log line: ${JSON.stringify(l.slice(0, 300))}`);
    assert.ok(l.length <= MAX_LINE + 60, `a log line of ${l.length} chars`);
    const piece = keyPieces(l, key);
    assert.equal(piece, undefined, `the key (${piece}) in a log line: ${l.slice(0, 300)}`);
  }
}

/** Runs `fn` with stderr captured (the default logger and the broken-logger fallback write there). */
async function withStderr<T>(fn: () => Promise<T>): Promise<{ result: T; text: string }> {
  const original = process.stderr.write;
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    return { result: await fn(), text };
  } finally {
    process.stderr.write = original;
  }
}

type LoggerKind = 'record' | 'throw' | 'reject' | 'not-a-function';

function makeLogger(kind: LoggerKind, lines: string[]): unknown {
  switch (kind) {
    case 'record':
      return (l: string) => void lines.push(l);
    case 'throw':
      return (l: string) => {
        lines.push(l);
        throw new Error(`logger broken ${KEY}`);
      };
    case 'reject':
      return (l: string) => {
        lines.push(l);
        return Promise.reject(new Error('logger broken'));
      };
    case 'not-a-function':
      return { log: (l: string) => lines.push(l) };
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Arbitrary options
// ---------------------------------------------------------------------------------------------

/** Any value a hostile or careless configuration may hold. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -10, max: 2000 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1.5, -1, 2 ** 31 - 1, 2 ** 31, 2 ** 53, 1e308, NaN, Infinity, -Infinity),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', '  ', '\n', 'http://127.0.0.1:1/x', 'https://', 'datadoghq.eu', `x\n[datadog-ci-pipeline-exporter] forged`, KEY),
  fc.array(fc.jsonValue(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue(), { maxKeys: 3 }),
);

const OPTION_NAMES = [
  'apiKey', 'site', 'endpoint', 'providerName', 'env', 'service', 'maxBatchEvents', 'maxBatchBytes', 'requestTimeoutMs',
  'maxConcurrentRequests', 'maxQueuedEvents', 'retry', 'maxPendingSpans', 'maxRememberedSpans', 'maxEventAgeMs',
  'flushTimeoutMs', 'shutdownTimeoutMs', 'gzip', 'proxy',
] as const;

const apiKeyValue = fc.oneof(anyValue, fc.constantFrom(KEY, ` ${KEY}\n`));
const retryValue = fc.oneof(anyValue, fc.record({ initialDelayMs: anyValue, maxDelayMs: anyValue, deadlineMs: anyValue }, { requiredKeys: [] }));

const optionsArb = fc.record(
  {
    values: fc.record(Object.fromEntries(OPTION_NAMES.map((n) => [n, n === 'retry' ? retryValue : n === 'apiKey' ? apiKeyValue : anyValue])) as Record<string, fc.Arbitrary<unknown>>, {
      requiredKeys: [],
    }),
    // A spool directory is either not a string (a configuration error) or a fresh temp dir:
    // an arbitrary path would let the spool tidy up some real directory.
    spool: fc.constantFrom<'none' | 'temp' | 'number'>('none', 'temp', 'number'),
    logger: fc.constantFrom<LoggerKind>('record', 'throw', 'reject', 'not-a-function'),
    whole: fc.constantFrom<'object' | 'null' | 'string' | 'array'>('object', 'object', 'object', 'null', 'string', 'array'),
  },
  { requiredKeys: ['values', 'spool', 'logger', 'whole'] },
);

test('fuzz: arbitrary options never throw, every message is one safe line, export() calls back once, shutdown() resolves', { timeout: 600_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} option runs=${OPTION_RUNS}`);
  await fc.assert(
    fc.asyncProperty(optionsArb, async ({ values, spool, logger, whole }) => {
      const lines: string[] = [];
      const dir = spool === 'temp' ? mkdtempSync(join(tmpdir(), 'fuzz-opt-spool-')) : undefined;
      const options: Record<string, unknown> = { ...values, logger: makeLogger(logger, lines) };
      if (dir) options.spoolDir = dir;
      if (spool === 'number') options.spoolDir = 42;
      const given = whole === 'object' ? options : whole === 'null' ? null : whole === 'string' ? KEY : [options];
      try {
        const { text } = await withStderr(async () => {
          const r = resolveOptions(given as DatadogCIPipelineExporterOptions, {});
          if (r.ok) {
            const o = r.options;
            for (const n of [o.delivery.maxBatchEvents, o.delivery.maxBatchBytes, o.delivery.maxConcurrentRequests, o.delivery.maxQueuedEvents, o.maxPendingSpans, o.maxRememberedSpans]) {
              assert.ok(Number.isSafeInteger(n) && n >= 1, `count ${n}`);
            }
            assert.ok(o.delivery.maxBatchEvents <= 1000);
            for (const ms of [o.delivery.requestTimeoutMs, o.flushTimeoutMs, o.shutdownTimeoutMs, o.delivery.retry.initialDelayMs, o.delivery.retry.maxDelayMs, o.delivery.retry.deadlineMs]) {
              assert.ok(typeof ms === 'number' && ms >= 0 && ms <= MAX_TIMER_MS, `timer ${ms}`);
            }
            for (const s of [o.delivery.endpoint, o.providerName]) assert.equal(typeof s, 'string');
          } else {
            assert.ok(r.problems.length >= 1);
          }

          let exporter: DatadogCIPipelineExporter | undefined;
          assert.doesNotThrow(() => {
            exporter = new DatadogCIPipelineExporter(given as DatadogCIPipelineExporterOptions);
          });
          let calls = 0;
          assert.doesNotThrow(() => exporter!.export([], () => calls++));
          await exporter!.forceFlush();
          const started = Date.now();
          await exporter!.shutdown();
          assert.ok(Date.now() - started < 5_000, 'shutdown with nothing to send is quick');
          for (let i = 0; i < 20 && calls === 0; i++) await new Promise((r) => setTimeout(r, 5));
          assert.equal(calls, 1, 'export() calls back exactly once');
          let after = 0;
          exporter!.export([], () => after++);
          assert.equal(after, 1, 'export() after shutdown() calls back at once');
        });
        // The API key, when the options carry one: it may also have been pasted into other options.
        // (Only the fuzz's own key is looked for: pieces of an arbitrary one, say "datadoghq.eu",
        // are found in any message about sites.)
        const key = whole === 'object' && typeof values.apiKey === 'string' && values.apiKey.trim() === KEY ? KEY : null;
        assertSafeLines(lines, key);
        assertSafeLines(text.split('\n').filter((l) => l !== ''), key);
        if (logger === 'not-a-function') assert.equal(lines.length, 0, 'a logger that is not a function is never called');
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }),
    params(OPTION_RUNS),
  );
});

// ---------------------------------------------------------------------------------------------
// 2. Random sequences of faults
// ---------------------------------------------------------------------------------------------

const encodings = {
  raw: (k: string) => k,
  unicode: (k: string) => [...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
  percent: (k: string) => [...k].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).join(''),
};

type Fault =
  | { kind: 'status'; status: number }
  | { kind: '429'; retryAfter: string }
  | { kind: 'echo'; status: number; encoding: keyof typeof encodings; pad: number }
  | { kind: 'reset' | 'resetMid' | 'hang' | 'ok' }
  | { kind: 'slow'; delayMs: number };

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ kind: fc.constant('status' as const), status: fc.constantFrom(500, 502, 503, 504, 408, 413, 400, 401, 403, 404, 202) }),
  fc.record({ kind: fc.constant('429' as const), retryAfter: fc.constantFrom('0', '0.05', '1', '3600', 'soon', new Date(0).toUTCString()) }),
  fc.record({
    kind: fc.constant('echo' as const),
    status: fc.constantFrom(400, 500, 403, 404),
    encoding: fc.constantFrom<keyof typeof encodings>('raw', 'unicode', 'percent'),
    pad: fc.integer({ min: 0, max: 600 }),
  }),
  fc.record({ kind: fc.constantFrom('reset' as const, 'resetMid' as const, 'hang' as const, 'ok' as const) }),
  fc.record({ kind: fc.constant('slow' as const), delayMs: fc.integer({ min: 0, max: 300 }) }),
);

function actionFor(f: Fault, req: IntakeRequest): IntakeAction | undefined {
  switch (f.kind) {
    case 'status':
      return { status: f.status, body: { errors: [{ detail: `scripted ${f.status}` }] } };
    case '429':
      return { status: 429, headers: { 'retry-after': f.retryAfter }, body: { errors: ['rate limited'] } };
    case 'echo': {
      const echoed = encodings[f.encoding](String(req.headers['dd-api-key']));
      return { status: f.status, body: `{"errors":[{"detail":"${'x'.repeat(f.pad)} key ${echoed}"}]}` };
    }
    case 'reset':
      return { reset: true };
    case 'resetMid':
      return { resetMidResponse: true };
    case 'hang':
      return { hang: true };
    case 'slow':
      return { delayMs: f.delayMs };
    case 'ok':
      return undefined;
  }
}

const scenarioArb = fc.record({
  jobs: fc.integer({ min: 0, max: 40 }),
  /** Jobs whose name marks them for a 400 whenever a request carries them. */
  bad: fc.integer({ min: 0, max: 3 }),
  /** How the spans are cut into export() calls. */
  calls: fc.integer({ min: 1, max: 4 }),
  faults: fc.array(faultArb, { maxLength: 10 }),
  logger: fc.constantFrom<LoggerKind>('record', 'record', 'throw', 'reject'),
  spool: fc.boolean(),
  flushMidway: fc.boolean(),
  options: fc.record({
    maxBatchEvents: fc.integer({ min: 1, max: 1000 }),
    maxBatchBytes: fc.constantFrom(1024, 4096, 65_536, 5_000_000),
    requestTimeoutMs: fc.integer({ min: 20, max: 400 }),
    maxConcurrentRequests: fc.integer({ min: 1, max: 4 }),
    maxQueuedEvents: fc.integer({ min: 1, max: 200 }),
    retry: fc.record({
      initialDelayMs: fc.integer({ min: 0, max: 20 }),
      maxDelayMs: fc.integer({ min: 0, max: 60 }),
      deadlineMs: fc.integer({ min: 0, max: 500 }),
    }),
    flushTimeoutMs: fc.integer({ min: 0, max: 500 }),
    shutdownTimeoutMs: fc.integer({ min: 50, max: 700 }),
    gzip: fc.boolean(),
  }),
});

test('fuzz: random fault sequences: no throw, callbacks once, valid bodies, every event counted, no key, shutdown on time', { timeout: 900_000 }, async (t) => {
  t.diagnostic(`FUZZ_SEED=${SEED} fault runs=${FAULT_RUNS}`);
  await fc.assert(
    fc.asyncProperty(scenarioArb, async (s) => {
      const names = Array.from({ length: s.jobs }, (_, i) => (i < s.bad ? `bad-job-${i}` : `job-${i}`));
      const spec: SpanSpec = { name: 'fuzz-pipeline', attributes: ci('pipeline', 'fuzz-pipeline'), children: names.map((n) => ({ name: n, attributes: ci('job', n) })) };
      const spans = (await recordTree(spec)) as ReadableSpan[];
      let next = 0;
      const intake = await startIntake({
        respond: (req) => {
          const f = s.faults[next++];
          if (f) return actionFor(f, req);
          // Past the script: the events marked bad are always refused, the rest accepted.
          if (req.events.some((e) => e.attributes.resource.name.startsWith('bad-'))) return { status: 400, body: { errors: [{ detail: 'bad event' }] } };
          return undefined;
        },
      });
      const dir = s.spool ? mkdtempSync(join(tmpdir(), 'fuzz-spool-')) : undefined;
      const lines: string[] = [];
      try {
        const { text } = await withStderr(async () => {
          const exporter = new DatadogCIPipelineExporter({
            ...s.options,
            endpoint: intake.endpoint,
            apiKey: KEY,
            logger: makeLogger(s.logger, lines) as never,
            ...(dir ? { spoolDir: dir } : {}),
          });
          const counts: number[] = [];
          const per = Math.ceil(spans.length / s.calls);
          for (let i = 0; i < spans.length; i += per) {
            const k = counts.push(0) - 1;
            assert.doesNotThrow(() => exporter.export(spans.slice(i, i + per), () => counts[k]!++));
            if (s.flushMidway && i === 0) await exporter.forceFlush();
          }
          const started = Date.now();
          await exporter.shutdown();
          const took = Date.now() - started;
          assert.ok(took <= s.options.shutdownTimeoutMs + SHUTDOWN_MARGIN_MS, `shutdown() took ${took} ms, deadline ${s.options.shutdownTimeoutMs}`);
          for (let i = 0; i < 100 && counts.some((c) => c === 0); i++) await new Promise((r) => setTimeout(r, 10));
          await new Promise((r) => setTimeout(r, 10));
          assert.deepEqual(counts, counts.map(() => 1), 'every export() callback fires exactly once');

          const c = exporter.getCounters();
          const dropped = DROP_REASONS.reduce((n, r) => n + c.dropped[r], 0);
          assert.equal(c.queued, 0, 'nothing is left in flight after shutdown()');
          assert.equal(c.eventsSent + c.spooled + c.queued + c.pending + dropped, spans.length, `every span is counted once: ${JSON.stringify(c)}`);
          assert.ok(intake.acceptedCount() >= c.eventsSent, 'every event counted as sent was accepted');
        });
        assert.deepEqual(
          intake.invalid.map((r) => r.errors),
          [],
          'every body the intake received is schema-valid',
        );
        for (const r of intake.requests) {
          assert.equal(r.headers['dd-api-key'], KEY);
          assert.equal(keyPieces(JSON.stringify(r.body)), undefined, 'the key never appears in a body');
        }
        assertSafeLines(lines);
        assertSafeLines(text.split('\n').filter((l) => l !== ''));
      } finally {
        await intake.close();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }),
    params(FAULT_RUNS),
  );
});
