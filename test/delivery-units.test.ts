// Pure parts of delivery: packing, answer classification, retry delays, error details.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodySize, encodeBody, packBatches } from '../src/delivery/batcher.js';
import { backoffMs, classify, sendWithRetry, serverDelayMs } from '../src/delivery/retry.js';
import { errorDetail } from '../src/delivery/split.js';
import { EventQueue } from '../src/delivery/queue.js';
import { Ledger } from '../src/delivery/ledger.js';
import { Diagnostics } from '../src/diagnostics.js';
import { jobEvent, jobEvents } from '../testkit/fault-helpers.js';
import type { PostResult } from '../src/delivery/transport.js';

test('packBatches: bodies stay within the event and byte caps, in order, and the size formula is exact', () => {
  const events = [...jobEvents('a', 7), jobEvent('big', { padBytes: 900 }), ...jobEvents('b', 9, { padBytes: 50 })];
  const maxBytes = 1500;
  const { batches, tooLarge } = packBatches(events, 4, maxBytes);
  assert.deepEqual(tooLarge, []);
  assert.deepEqual(batches.flat(), events);
  for (const b of batches) {
    const body = encodeBody(b);
    assert.equal(Buffer.byteLength(body), bodySize(b.length, b.reduce((s, e) => s + e.bytes, 0)));
    assert.ok(Buffer.byteLength(body) <= maxBytes, `body ${Buffer.byteLength(body)} > ${maxBytes}`);
    assert.ok(b.length <= 4);
    assert.ok(b.length >= 1);
  }
  // Greedy: each batch is full, i.e. the next event would not have fitted.
  for (let i = 0; i < batches.length - 1; i++) {
    const b = batches[i]!;
    const next = batches[i + 1]![0]!;
    const sum = b.reduce((s, e) => s + e.bytes, 0);
    assert.ok(b.length === 4 || bodySize(b.length + 1, sum + next.bytes) > maxBytes);
  }
});

test('packBatches: an event larger alone than the cap is set apart, the others still packed', () => {
  const small = jobEvents('s', 3);
  const huge = jobEvent('huge', { padBytes: 5000 });
  const { batches, tooLarge } = packBatches([small[0]!, huge, small[1]!, small[2]!], 1000, 2000);
  assert.deepEqual(tooLarge, [huge]);
  assert.deepEqual(batches, [small]);
});

test('EventQueue: drops the oldest past capacity and takes bodies within caps', () => {
  const q = new EventQueue(5);
  const ev = jobEvents('q', 8);
  const over = q.push(ev);
  assert.deepEqual(over, ev.slice(0, 3));
  assert.equal(q.length, 5);
  const dropped: unknown[] = [];
  const first = q.take(2, 1_000_000, (e) => e !== ev[4], (e) => dropped.push(e));
  assert.deepEqual(first, [ev[3], ev[5]]);
  assert.deepEqual(dropped, [ev[4]]);
  assert.deepEqual(q.take(10, 1_000_000, () => true, () => undefined), ev.slice(6));
  assert.equal(q.length, 0);
});

test('classify: retryable, split, bisect, unauthorized, final', () => {
  const r = (status: number): PostResult => ({ kind: 'response', status, headers: {}, body: '' });
  for (const s of [408, 429, 500, 502, 503, 504]) assert.equal(classify(r(s)), 'retry', String(s));
  assert.equal(classify({ kind: 'network', error: 'reset', code: 'ECONNRESET', timedOut: false }), 'retry');
  assert.equal(classify(r(202)), 'ok');
  assert.equal(classify(r(200)), 'ok');
  assert.equal(classify(r(413)), 'split');
  assert.equal(classify(r(400)), 'bisect');
  assert.equal(classify(r(401)), 'unauthorized');
  assert.equal(classify(r(403)), 'unauthorized');
  assert.equal(classify(r(404)), 'fail');
  assert.equal(classify(r(501)), 'fail');
});

test('serverDelayMs: Retry-After seconds and HTTP date, X-RateLimit-Reset seconds and epoch', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(serverDelayMs({ 'retry-after': '3' }, now), 3000);
  assert.equal(serverDelayMs({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }, now), 5000);
  assert.equal(serverDelayMs({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }, now), 0);
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': '7' }, now), 7000);
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': String(now / 1000 + 2) }, now), 2000);
  assert.equal(serverDelayMs({ 'retry-after': '1', 'x-ratelimit-reset': '9' }, now), 1000);
  assert.equal(serverDelayMs({ 'retry-after': 'soon' }, now), undefined);
  assert.equal(serverDelayMs({}, now), undefined);
});

test('backoffMs: grows exponentially, capped, jittered within [base/2, base]', () => {
  assert.equal(backoffMs(0, 100, 10_000, () => 0), 50);
  assert.equal(backoffMs(0, 100, 10_000, () => 1), 100);
  assert.equal(backoffMs(3, 100, 10_000, () => 1), 800);
  assert.equal(backoffMs(20, 100, 10_000, () => 1), 10_000);
  assert.equal(backoffMs(20, 100, 10_000, () => 0), 5_000);
  const a = backoffMs(2, 100, 10_000, () => 0.3);
  const b = backoffMs(2, 100, 10_000, () => 0.7);
  assert.notEqual(a, b);
});

/** Retry sleeps are unref'd by design; a test with no server must hold the event loop itself. */
async function held<T>(work: Promise<T>): Promise<T> {
  const t = setInterval(() => undefined, 1000);
  try {
    return await work;
  } finally {
    clearInterval(t);
  }
}

test('sendWithRetry: stops at the deadline, never sleeping past it, and reports why', async () => {
  let posts = 0;
  let retries = 0;
  const started = Date.now();
  const final = await held(
    sendWithRetry({
      post: async () => {
        posts++;
        return { kind: 'response', status: 503, headers: {}, body: '' };
      },
      requestTimeoutMs: 100,
      initialDelayMs: 50,
      maxDelayMs: 50,
      deadlineAt: started + 300,
      signal: new AbortController().signal,
      now: Date.now,
      random: () => 1,
      onRetry: () => retries++,
      stillValid: () => true,
    }),
  );
  const took = Date.now() - started;
  assert.equal(final.verdict, 'gave_up');
  assert.match(final.verdict === 'gave_up' ? final.why : '', /HTTP 503/);
  // Waits of 50 ms within 300 ms: about 6 attempts, and never a sleep that ends past the deadline.
  assert.ok(posts >= 3 && posts <= 7, `posts=${posts}`);
  assert.equal(retries, posts - 1);
  // Slack for a loaded machine; ignoring the deadline would retry until the test times out.
  assert.ok(took < 300 + 1_000, `took ${took} ms`);
});

test('sendWithRetry: a server delay beyond the deadline ends the retries at once', async () => {
  let posts = 0;
  const started = Date.now();
  const final = await sendWithRetry({
    post: async () => {
      posts++;
      return { kind: 'response', status: 429, headers: { 'retry-after': '60' }, body: '' };
    },
    requestTimeoutMs: 100,
    initialDelayMs: 1,
    maxDelayMs: 1,
    deadlineAt: Date.now() + 5_000,
    signal: new AbortController().signal,
    now: Date.now,
    random: Math.random,
    onRetry: () => undefined,
    stillValid: () => true,
  });
  assert.equal(posts, 1);
  assert.equal(final.verdict, 'gave_up');
  assert.match(final.verdict === 'gave_up' ? final.why : '', /asked to wait 60 s/);
  assert.ok(Date.now() - started < 1000);
});

test('errorDetail: Datadog error bodies, raw text, empty', () => {
  assert.equal(errorDetail('{"errors":[{"status":"400","title":"Bad Request","detail":"invalid end"},{"detail":"x"}]}', 400), 'invalid end; x');
  assert.equal(errorDetail('{"errors":[{"title":"Payload Too Large"}]}', 413), 'Payload Too Large');
  assert.equal(errorDetail('{"errors":["plain"]}', 400), 'plain');
  assert.equal(errorDetail('oops\nhtml', 400), 'oops html');
  assert.equal(errorDetail('', 400), 'HTTP 400 with no error detail');
  assert.ok(errorDetail('x'.repeat(2000), 400).length <= 501);
});

test('Ledger: each event settles once; counters follow; a group resolves true only if all were delivered', async () => {
  const diagnostics = new Diagnostics(() => undefined);
  const ledger = new Ledger(diagnostics);
  const a = ledger.admit(jobEvents('a', 3));
  const b = ledger.admit(jobEvents('b', 2));
  assert.equal(diagnostics.counters.queued, 5);
  assert.equal(ledger.settle(a.items, 'delivered'), 3);
  assert.equal(ledger.settle(a.items, 'delivered'), 0, 'a second settlement is ignored');
  assert.equal(ledger.settle([a.items[0]!], 'spooled'), 0);
  assert.equal(ledger.settle([b.items[0]!], 'delivered'), 1);
  assert.equal(ledger.settle(b.items, 'shutdown'), 1);
  assert.equal(ledger.settle(b.items, 'delivery_failed'), 0);
  assert.equal(await a.group.done, true);
  assert.equal(await b.group.done, false);
  const c = diagnostics.counters;
  assert.deepEqual([c.queued, c.eventsSent, c.spooled, c.dropped.shutdown, c.dropped.delivery_failed], [0, 4, 0, 1, 0]);
  assert.equal(ledger.unsettled().length, 0);
  assert.equal(await ledger.admit([]).group.done, true);
});
