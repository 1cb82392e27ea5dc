// Pure parts of delivery: packing, answer classification, retry delays, error details.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodySize, encodeBody, encodeSelection, packBatches } from '../src/delivery/batcher.js';
import { backoffMs, classify, sendWithRetry, serverDelayMs } from '../src/delivery/retry.js';
import { errorDetail } from '../src/delivery/split.js';
import { BatchQueue } from '../src/delivery/queue.js';
import { Batch, Ledger, type Selection, sliceSelection, wholeBatch } from '../src/delivery/ledger.js';
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

const namesIn = (body: Buffer): string[] =>
  (JSON.parse(body.toString('utf8')) as { data: Array<{ attributes: { resource: { name: string } } }> }).data.map((e) => e.attributes.resource.name);
const selNames = (sel: Selection): string[] => sel.at.map((i, k) => JSON.parse(sel.of[k]!.event(i).json).attributes.resource.name as string);

test('Batch: events written into one body with offsets; any selection of them encodes as the body of those events', () => {
  const ledger = new Ledger(new Diagnostics(() => undefined));
  const ev = [...jobEvents('b', 3), jobEvent('wide-é€😀'), ...jobEvents('c', 2)];
  const group = ledger.group(ev.length);
  const b = ledger.batch(group, ev);
  const all = wholeBatch(b);
  // The whole batch is its body, byte for byte what encodeBody gives, without a copy.
  assert.equal(encodeSelection(all), b.body);
  assert.deepEqual(b.body, encodeBody(ev));
  for (let i = 0; i < ev.length; i++) {
    assert.equal(b.event(i).json, ev[i]!.json);
    assert.equal(b.bytesOf(i), ev[i]!.bytes);
  }
  // Halves (413), single events (400 bisection), a gap (settled events left out), two batches merged.
  const names = ev.map((e) => JSON.parse(e.json).attributes.resource.name as string);
  assert.deepEqual(namesIn(encodeSelection(sliceSelection(all, 0, 3))), names.slice(0, 3));
  assert.deepEqual(namesIn(encodeSelection(sliceSelection(all, 3))), names.slice(3));
  assert.deepEqual(namesIn(encodeSelection(sliceSelection(all, 5, 6))), [names[5]]);
  const gap: Selection = { of: [b, b, b], at: [0, 2, 3] };
  assert.deepEqual(namesIn(encodeSelection(gap)), [names[0], names[2], names[3]]);
  const b2 = ledger.batch(group, jobEvents('d', 1));
  assert.deepEqual(namesIn(encodeSelection({ of: [b, b2], at: [5, 0] })), [names[5], 'd-0']);
});

test('BatchQueue: drops the oldest events past capacity, takes whole batches within the caps, skips settled events', () => {
  const ledger = new Ledger(new Diagnostics(() => undefined));
  const q = new BatchQueue(5);
  const g = ledger.group(9);
  const b1 = ledger.batch(g, jobEvents('a', 4));
  const b2 = ledger.batch(g, jobEvents('b', 3));
  const b3 = ledger.batch(g, jobEvents('c', 2));
  assert.equal(q.push(b1).at.length, 0);
  assert.deepEqual(selNames(q.push(b2)), ['a-0', 'a-1']);
  assert.equal(q.length, 5);
  const over = q.push(b3);
  assert.deepEqual(selNames(over), ['a-2', 'a-3']);
  ledger.settle(over, 'queue_overflow');
  assert.equal(q.length, 5);
  ledger.settle({ of: [b2], at: [1] }, 'delivered');
  // b2 (two open events left) and b3 together: 4 events within a cap of 4.
  assert.deepEqual(selNames(q.take(4, 1_000_000)), ['b-0', 'b-2', 'c-0', 'c-1']);
  assert.equal(q.length, 0);
  const b4 = ledger.batch(g, []);
  assert.equal(b4.size, 0);
});

test('BatchQueue: a batch that does not fit beside the ones taken waits for the next request', () => {
  const ledger = new Ledger(new Diagnostics(() => undefined));
  const q = new BatchQueue(100);
  const g = ledger.group(5);
  q.push(ledger.batch(g, jobEvents('a', 2)));
  q.push(ledger.batch(g, jobEvents('b', 3)));
  assert.deepEqual(selNames(q.take(4, 1_000_000)), ['a-0', 'a-1']);
  assert.deepEqual(selNames(q.take(4, 1_000_000)), ['b-0', 'b-1', 'b-2']);
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
  const ga = ledger.group(3);
  const a = wholeBatch(ledger.batch(ga, jobEvents('a', 3)));
  const gb = ledger.group(3);
  const b = wholeBatch(ledger.batch(gb, jobEvents('b', 2)));
  assert.equal(diagnostics.counters.queued, 6);
  assert.equal(ledger.settle(a, 'delivered'), 3);
  assert.equal(ledger.settle(a, 'delivered'), 0, 'a second settlement is ignored');
  assert.equal(ledger.settle(sliceSelection(a, 0, 1), 'spooled'), 0);
  assert.equal(ledger.settle(sliceSelection(b, 0, 1), 'delivered'), 1);
  assert.equal(ledger.unsettled().at.length, 1);
  assert.equal(ledger.settle(b, 'shutdown'), 1);
  assert.equal(ledger.settle(b, 'delivery_failed'), 0);
  assert.equal(ledger.settleLoose(gb, 1, 'too_large'), 1);
  assert.equal(await ga.done, true);
  assert.equal(await gb.done, false);
  const c = diagnostics.counters;
  assert.deepEqual([c.queued, c.eventsSent, c.spooled, c.dropped.shutdown, c.dropped.delivery_failed, c.dropped.too_large], [0, 4, 0, 1, 0, 1]);
  assert.equal(ledger.unsettled().at.length, 0);
  assert.equal(await ledger.group(0).done, true);
});

test('a batch whose events misstate their byte length is measured instead: the body is exactly the events, never stale memory', () => {
  const group = { seq: 1, remaining: 2, allDelivered: true, done: Promise.resolve(true), resolve() {}, onDone: undefined };
  const a = '{"a":"é"}';
  const b = '{"b":1}';
  for (const claimed of [[Buffer.byteLength(a), Buffer.byteLength(b)], [a.length, b.length], [50, 1]]) {
    const batch = new Batch(group, [
      { json: a, bytes: claimed[0]!, timeMs: 0, describe: 'a' },
      { json: b, bytes: claimed[1]!, timeMs: 0, describe: 'b' },
    ]);
    assert.equal(batch.body.toString('utf8'), `{"data":[${a},${b}]}`, `claimed ${claimed.join(', ')}`);
    assert.equal(batch.bytesOf(0), Buffer.byteLength(a));
    assert.equal(batch.bytesOf(1), Buffer.byteLength(b));
  }
});
