// Issue 7, the boundary side: hostile options, a logger that throws, log lines that could be
// forged or grow without bound, and an API key echoed back in an encoding the old redaction did
// not know. Each test failed on the code before the fix.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { createDelivery } from '../src/delivery/index.js';
import { MAX_TIMER_MS } from '../src/delivery/timers.js';
import fc from 'fast-check';
import { Diagnostics, MAX_LINE, PREFIX, REDACTED, secretPattern, secretRedactor } from '../src/diagnostics.js';
import { resolveOptions } from '../src/options.js';
import { startIntake } from '../testkit/intake.js';
import { fastConfig, jobEvents, recordingDiagnostics } from '../testkit/fault-helpers.js';
import { ci, exportDirect, recordTree } from './support/trace-helpers.js';

const KEY = '0123456789abcdef0123456789abcdef';

/** Every 8-character piece of the key: none may appear in a log. */
function keyPieces(key: string): string[] {
  return Array.from({ length: key.length - 7 }, (_, i) => key.slice(i, i + 8));
}

function assertNoKey(lines: readonly string[], key = KEY): void {
  const log = lines.join('\n');
  for (const piece of keyPieces(key)) assert.ok(!log.includes(piece), `the log holds ${piece} of the key:\n${log.slice(0, 1500)}`);
}

/** Captures what is written to stderr during `fn` (the default logger and the fallback). */
async function captureStderr<T>(fn: () => T | Promise<T>): Promise<{ result: T; text: string }> {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stderr.write;
  try {
    const result = await fn();
    return { result, text };
  } finally {
    process.stderr.write = original;
  }
}

function collectUnhandled(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const on = (e: unknown): void => {
    seen.push(e);
  };
  process.on('unhandledRejection', on);
  t.after(() => process.off('unhandledRejection', on));
  return seen;
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

test('timeouts above 2^31-1 ms are clamped to Node timer limit and said; requests still get their time', { timeout: 20_000 }, async (t) => {
  const r = resolveOptions({ endpoint: 'http://127.0.0.1:1/x', requestTimeoutMs: 1e12, flushTimeoutMs: Infinity, retry: { maxDelayMs: 2 ** 40 } }, {});
  assert.ok(r.ok, 'a huge timeout is not an error');
  if (!r.ok) return;
  assert.equal(r.options.delivery.requestTimeoutMs, MAX_TIMER_MS);
  assert.equal(r.options.flushTimeoutMs, MAX_TIMER_MS);
  assert.equal(r.options.delivery.retry.maxDelayMs, MAX_TIMER_MS);
  assert.equal(r.notes.length, 3);
  assert.match(r.notes.join('\n'), /option requestTimeoutMs is 1000000000000 ms, above Node's timer limit; using 2147483647 ms/);

  // Whatever reaches the timers is clamped too: a slow answer within a huge timeout is delivered.
  const intake = await startIntake({ respond: () => ({ delayMs: 50 }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { requestTimeoutMs: 1e12 }), diagnostics);
  assert.equal(await d.send(jobEvents('huge-timeout', 3)), true);
  await d.shutdown(1000);
  assert.equal(diagnostics.counters.eventsSent, 3);
});

test('non-string apiKey/site/env/service/providerName/endpoint/spoolDir: one line each, never thrown, the key never echoed', async () => {
  for (const name of ['apiKey', 'site', 'env', 'service', 'providerName', 'endpoint', 'spoolDir']) {
    for (const value of [42, { secret: KEY }, [KEY], true]) {
      const lines: string[] = [];
      let exporter: DatadogCIPipelineExporter | undefined;
      assert.doesNotThrow(() => {
        exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:1/x', [name]: value, logger: (l) => lines.push(l) });
      }, `${name}: ${String(value)}`);
      const bad = lines.filter((l) => l.includes(`option ${name} must be`));
      assert.equal(bad.length, 1, `one line for ${name}: ${lines.join(' | ')}`);
      assert.match(bad[0]!, /^not configured, nothing will be sent: /);
      if (name === 'apiKey') assertNoKey(lines);
      const result = await exportDirect(exporter!, []);
      assert.equal(result.code, 1, 'a misconfigured exporter reports FAILED');
      await exporter!.shutdown();
    }
  }
});

test('null or non-object options never throw; null means defaults', async () => {
  const { text } = await captureStderr(async () => {
    for (const options of [null, undefined, 42, 'apiKey', [1, 2], () => undefined]) {
      let e: DatadogCIPipelineExporter | undefined;
      assert.doesNotThrow(() => {
        e = new DatadogCIPipelineExporter(options as never);
      }, String(options));
      await e!.shutdown();
    }
  });
  assert.match(text, /the options must be an object/);
  assert.ok(!/must be an object[^\n]*null/.test(text), 'null is not an error');
});

test('a non-function logger is a configuration error said on stderr, never a throw later', async () => {
  const { text } = await captureStderr(async () => {
    const e = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:1/x', logger: 'console' as never });
    // Old code: the first message (here: an unknown ci.level) called the string and threw.
    const spans = await recordTree({ name: 'p', attributes: { 'ci.level': 'bogus' } });
    await exportDirect(e, spans as ReadableSpan[]);
    await e.shutdown();
  });
  assert.match(text, /option logger must be a function such as \(line\) => console\.error\(line\), got "console" \(string\)/);
});

test('fractional counts, wrong-typed gzip, retry and proxy are configuration errors naming the option', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ maxBatchEvents: 1.5 }, /option maxBatchEvents must be a whole number from 1 to 1000, got 1\.5/],
    [{ maxQueuedEvents: 10.25 }, /option maxQueuedEvents must be a whole number of at least 1, got 10\.25/],
    [{ maxConcurrentRequests: NaN }, /option maxConcurrentRequests must be a whole number from 1 to 64, got NaN/],
    [{ gzip: 'yes' }, /option gzip must be true or false, got "yes" \(string\)/],
    [{ gzip: 1 }, /option gzip must be true or false, got 1/],
    [{ retry: 5 }, /option retry must be an object such as \{ initialDelayMs/],
    [{ retry: { deadlineMs: '10s' } }, /option retry\.deadlineMs must be a number of milliseconds from 0/],
    [{ retry: { initialDelayMs: -1 } }, /option retry\.initialDelayMs must be a number of milliseconds from 0/],
    [{ proxy: true }, /option proxy must be an http\(s\) URL such as http:\/\/proxy\.example:3128, or false/],
    [{ requestTimeoutMs: NaN }, /option requestTimeoutMs must be a number of milliseconds from 1/],
  ];
  for (const [over, expected] of cases) {
    const r = resolveOptions({ endpoint: 'http://127.0.0.1:1/x', ...over }, {});
    assert.equal(r.ok, false, JSON.stringify(over));
    if (!r.ok) {
      assert.equal(r.problems.length, 1, r.message);
      assert.match(r.problems[0]!, expected);
    }
  }
});

test('an option whose getter throws is a configuration error, not a throw', () => {
  const options = {
    endpoint: 'http://127.0.0.1:1/x',
    get maxBatchEvents(): number {
      throw new Error('boom');
    },
  };
  const r = resolveOptions(options, {});
  assert.ok(!r.ok && /option maxBatchEvents could not be read \("boom"\)/.test(r.message));
});

test('a likely typo of an option name is said once, and does not stop the exporter', () => {
  const r = resolveOptions({ endpoint: 'http://127.0.0.1:1/x', apikey: 'x', maxBatchEvent: 10 } as never, {});
  assert.ok(r.ok);
  assert.deepEqual(r.notes, [
    'unknown option "apikey" is ignored; did you mean apiKey?',
    'unknown option "maxBatchEvent" is ignored; did you mean maxBatchEvents?',
  ]);
});

// ---------------------------------------------------------------------------------------------
// A logger that throws
// ---------------------------------------------------------------------------------------------

for (const kind of ['throws', 'rejects'] as const) {
  test(`a logger that ${kind}: export() does not throw, shutdown() and forceFlush() resolve, stderr takes over once`, { timeout: 20_000 }, async (t) => {
    const unhandled = collectUnhandled(t);
    const intake = await startIntake();
    t.after(() => intake.close());
    let calls = 0;
    const logger = (): void => {
      calls++;
      if (kind === 'throws') throw new Error('logger is broken');
      return Promise.reject(new Error('logger is broken')) as never;
    };
    const spans = await recordTree({
      name: 'p',
      attributes: ci('pipeline', 'p'),
      children: [
        { name: 'odd', attributes: { 'ci.level': 'bogus' } },
        { name: 'odd2', attributes: { 'ci.level': 'bogus2' } },
      ],
    });
    const { text } = await captureStderr(async () => {
      const e = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger, shutdownTimeoutMs: 2000, flushTimeoutMs: 2000 });
      // Old code: the unknown-level message threw out of export().
      assert.doesNotThrow(() => e.export(spans as ReadableSpan[], () => undefined));
      await e.forceFlush();
      await e.shutdown(); // prints the summary (2 unknown_level): old code rejected here
      await new Promise((r) => setImmediate(r));
      assert.equal(e.getCounters().eventsSent, 1);
    });
    // A rejection is seen a turn later: a message said in the same turn may still reach it.
    assert.ok(calls >= 1 && calls <= (kind === 'throws' ? 1 : 2), `the broken logger is given up after its first failure (${calls} calls)`);
    assert.equal(text.match(/the logger option failed/g)?.length, 1, text);
    assert.match(text, /ci\.level "bogus2"|dropped 2 event/);
    assert.deepEqual(unhandled, []);
  });
}

// ---------------------------------------------------------------------------------------------
// Log hygiene
// ---------------------------------------------------------------------------------------------

test('a value with a newline cannot forge a log line; a 1 MB message becomes one clipped line', async () => {
  const forged = `ok\n${PREFIX} dropped 0 events, all fine\r\u2028\u001b[2K`;
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:1/x', logger: (l) => lines.push(l), shutdownTimeoutMs: 100 });
  // A span with an unknown ci.level whose value carries a forged line and terminal controls.
  const spans = await recordTree({ name: 'p', attributes: { 'ci.level': forged } });
  await exportDirect(exporter, spans as ReadableSpan[]);
  await exporter.shutdown();
  assert.ok(lines.length > 0);
  // eslint-disable-next-line no-control-regex -- control characters are what is checked for
  for (const l of lines) assert.ok(!/[\n\r\u2028\u001b]/.test(l), `a line with a line break or a control character: ${JSON.stringify(l)}`);

  const d = new Diagnostics((l) => lines.push(l));
  d.say(`big: ${'x'.repeat(1_000_000)}\nforged`);
  const last = lines[lines.length - 1]!;
  assert.ok(last.length <= MAX_LINE + 40, `line of ${last.length} chars`);
  assert.match(last, /… \(line cut, 1000012 chars\)$/);
});

test('remembered message kinds are bounded in bytes, not only in number', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const d = new Diagnostics(() => undefined);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 200; i++) {
    // Each kind embeds a 256 KB user value (e.g. an attribute key): 51 MB if kept.
    const kind = `attr:${String(i).padStart(4, '0')}${'k'.repeat(256 * 1024)}`;
    d.once(kind, 'a problem');
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8 * 1024 * 1024, `remembered kinds keep ${Math.round(grown / 1e6)} MB alive`);
  // Still once per kind.
  let said = 0;
  const e = new Diagnostics(() => said++);
  for (let i = 0; i < 3; i++) e.once(`k${'x'.repeat(10_000)}`, 'm');
  assert.equal(said, 1);
});

// ---------------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------------

const ENCODINGS: Array<[string, (key: string) => string]> = [
  ['\\u-escaped', (k) => [...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')],
  ['\\U-escaped upper case', (k) => [...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`).join('')],
  ['percent-encoded', (k) => [...k].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')],
  ['half escaped', (k) => [...k].map((c, i) => (i % 2 ? `\\u00${c.charCodeAt(0).toString(16)}` : c)).join('')],
  ['HTML entities', (k) => [...k].map((c) => `&#${c.charCodeAt(0)};`).join('')],
];

for (const [name, encode] of ENCODINGS) {
  test(`a 400 body echoing the API key ${name} near the 500-character clip: no part of the key is logged`, { timeout: 15_000 }, async (t) => {
    const intake = await startIntake({
      // Raw JSON text, so that the escapes reach the client as the server wrote them.
      respond: () => ({ status: 400, body: `{"errors":[{"detail":"${'x'.repeat(480)}${encode(KEY)}"}]}` }),
    });
    t.after(() => intake.close());
    const { diagnostics, lines } = recordingDiagnostics();
    const d = createDelivery(fastConfig(intake.endpoint, { apiKey: KEY, maxConcurrentRequests: 1 }), diagnostics);
    await d.send(jobEvents('echo', 2));
    await d.shutdown(1000);
    assert.equal(diagnostics.counters.dropped.rejected, 2);
    assert.ok(lines.some((l) => l.includes('Datadog rejected')));
    assertNoKey(lines);
    // Nor the key in its encoded form (trivially decoded by whoever reads the log).
    const encoded = encode(KEY);
    const log = lines.join('\n');
    for (let i = 0; i + 12 <= encoded.length; i++) assert.ok(!log.includes(encoded.slice(i, i + 12)), `the log holds ${encoded.slice(i, i + 12)}`);
  });
}

test('the redactor finds the key in any mix of encodings and letter case, and leaves other text alone', () => {
  const redact = secretRedactor('a/b"c d-Ü€😀');
  const mixed = 'x a\\/b\\"c+d%2d%C3%9c\\u20AC\\ud83d\\ude00 y';
  assert.equal(redact(mixed), 'x [API key redacted] y');
  assert.equal(redact('A/B"C D-ü€😀'), '[API key redacted]');
  assert.equal(redact('nothing here a/b'), 'nothing here a/b');
  assert.equal(secretRedactor('abc')('abc'), 'abc', 'keys under 4 characters are not redacted');
});

test('the redactor\'s shortcut (an ASCII key, a text with no \\, % or &) answers what its regular expression does', () => {
  // Texts made of key fragments in any case and encoding, the key itself, and noise that
  // includes the characters the shortcut looks for and non-ASCII letters that case-map to ASCII.
  const key = fc.stringMatching(/^[\x21-\x7e]{4,40}$/);
  const encodings = (k: string): string[] => [
    k,
    k.toUpperCase(),
    k.toLowerCase(),
    [...k].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join(''),
    [...k].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
    encodeURIComponent(k),
    [...k].map((c) => `&#${c.charCodeAt(0)};`).join(''),
    k.slice(0, -1),
    k.slice(1),
  ];
  const noise = fc.constantFrom('', ' ', 'x', '\\', '%', '&', '+', 'K', 'ſ', 'İ', 'é', '😀', 'key', '"', '/');
  fc.assert(
    fc.property(key, fc.array(fc.tuple(fc.nat(8), noise), { maxLength: 6 }), (k, pieces) => {
      const forms = encodings(k);
      const text = pieces.map(([i, n]) => `${forms[i % forms.length]}${n}`).join('');
      const reference = text.replace(secretPattern(k), REDACTED);
      assert.equal(secretRedactor(k)(text), reference);
    }),
    { numRuns: 3000, seed: 12 },
  );
  // And the texts it skips are returned as they are, the key in any case is not.
  const redact = secretRedactor('0123abcdEF');
  assert.equal(redact('sent 10 events'), 'sent 10 events');
  assert.equal(redact('key 0123ABCDef!'), `key ${REDACTED}!`);
});

test('quote() never throws and says what a number is', async () => {
  const { quote } = await import('../src/diagnostics.js');
  assert.equal(quote(NaN), 'NaN');
  assert.equal(quote(-Infinity), '-Infinity');
  assert.equal(quote(10n), '10n');
  const hostile = new Proxy({}, { get: () => { throw new Error('no'); }, ownKeys: () => { throw new Error('no'); } });
  assert.doesNotThrow(() => quote(hostile));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(quote(cyclic), '[object Object]');
});
