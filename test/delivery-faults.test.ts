// One test per fault of issue 3, against the real intake: the exact set of events delivered
// (nothing lost, nothing twice except identical retries) and the counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDelivery } from '../src/delivery/index.js';
import { startIntake, type IntakeAction, type IntakeRequest } from '../testkit/intake.js';
import {
  acceptedNames,
  duplicatesAreIdentical,
  fastConfig,
  jobEvent,
  jobEvents,
  nameOf,
  namesOf,
  recordingDiagnostics,
} from '../testkit/fault-helpers.js';

const unavailable: IntakeAction = { status: 503, body: { errors: [{ status: '503', detail: 'Service Unavailable' }] } };

/** Answers `fault` to the first `n` requests, then the intake's default. */
function firstN(n: number, fault: IntakeAction): () => IntakeAction | undefined {
  let seen = 0;
  return () => (seen++ < n ? fault : undefined);
}

test('a run of 503s: retried until accepted, each event delivered once', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: firstN(3, unavailable) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxConcurrentRequests: 1 }), diagnostics);
  const events = jobEvents('r503', 5);
  assert.equal(await d.send(events), true);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.deepEqual(
    intake.requests.map((r) => r.outcome),
    [503, 503, 503, 202],
  );
  // The retried bodies are byte-identical: same IDs, so Datadog keeps one record.
  assert.equal(new Set(intake.requests.map((r) => JSON.stringify(r.body))).size, 1);
  const c = diagnostics.counters;
  assert.equal(c.requests, 4);
  assert.equal(c.eventsRetried, 15);
  assert.equal(c.eventsSent, 5);
  assert.equal(diagnostics.totalDropped(), 0);
  await d.shutdown(1000);
});

test('429 with Retry-After: waits as asked (not the short backoff), then delivers', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({
    respond: firstN(1, { status: 429, headers: { 'retry-after': '1' }, body: { errors: [{ detail: 'Too Many Requests' }] } }),
  });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint), diagnostics);
  const events = jobEvents('r429', 3);
  const started = Date.now();
  assert.equal(await d.send(events), true);
  const took = Date.now() - started;
  assert.ok(took >= 950, `retried after ${took} ms; Retry-After asked for 1 s (backoff alone is 10 ms)`);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.equal(diagnostics.counters.eventsRetried, 3);
  assert.equal(diagnostics.counters.requests, 2);
  await d.shutdown(1000);
});

test('429 with X-RateLimit-Reset: waits as asked', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: firstN(1, { status: 429, headers: { 'x-ratelimit-reset': '1' } }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint), diagnostics);
  const started = Date.now();
  assert.equal(await d.send(jobEvents('rl', 2)), true);
  assert.ok(Date.now() - started >= 950);
  assert.equal(intake.acceptedCount(), 2);
  await d.shutdown(1000);
});

test('connection reset after the request was read: retried, delivered once', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: firstN(2, { reset: true }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxConcurrentRequests: 1 }), diagnostics);
  const events = jobEvents('reset', 4);
  assert.equal(await d.send(events), true);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.deepEqual(
    intake.requests.map((r) => r.outcome),
    ['reset', 'reset', 202],
  );
  assert.equal(diagnostics.counters.eventsRetried, 8);
  assert.equal(diagnostics.counters.eventsSent, 4);
  await d.shutdown(1000);
});

test('connection reset in the middle of a 202 response: not taken as delivered, retried', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: firstN(1, { resetMidResponse: true }) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint), diagnostics);
  const events = jobEvents('midresp', 3);
  assert.equal(await d.send(events), true);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  assert.deepEqual(
    intake.requests.map((r) => r.outcome),
    ['reset-mid-response', 202],
  );
  assert.equal(diagnostics.counters.eventsRetried, 3);
  await d.shutdown(1000);
});

test('a server that never answers: attempts time out; flush and shutdown return by their deadlines', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: () => ({ hang: true }) });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(
    fastConfig(intake.endpoint, { requestTimeoutMs: 200, retry: { initialDelayMs: 10, maxDelayMs: 20, deadlineMs: 60_000 } }),
    diagnostics,
  );
  const sent = d.send(jobEvents('hang', 6));
  let started = Date.now();
  await d.flush(400);
  let took = Date.now() - started;
  // The deadline plus slack for a loaded CI machine.
  assert.ok(took >= 390 && took < 2_000, `flush took ${took} ms`);
  assert.ok(intake.requests.length >= 2, 'the per-attempt timeout fired and the batch was retried');
  started = Date.now();
  await d.shutdown(500);
  took = Date.now() - started;
  assert.ok(took < 2_500, `shutdown took ${took} ms`);
  assert.equal(await sent, false);
  // Shutdown cut the attempt in flight and the retries: nothing more reaches the endpoint.
  const after = intake.requests.length;
  const attempts = diagnostics.counters.requests;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(intake.requests.length, after, 'requests after shutdown');
  assert.equal(diagnostics.counters.requests, attempts, 'attempts after shutdown');
  const c = diagnostics.counters;
  assert.equal(c.dropped.delivery_failed, 6, JSON.stringify(c.dropped));
  assert.equal(c.queued, 0);
  assert.equal(c.eventsSent, 0);
  assert.ok(c.eventsRetried >= 6);
  assert.ok(lines.some((l) => /6 event\(s\) not delivered to test\.example within 500 ms/.test(l)), lines.join('\n'));
});

test('413 above a size: halves until each fits; an event too large alone is dropped with a message', { timeout: 15_000 }, async (t) => {
  const limit = 2_500;
  const intake = await startIntake({
    respond: (r) => (r.bodyBytes > limit ? { status: 413, body: { errors: [{ detail: 'Payload Too Large' }] } } : undefined),
  });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxConcurrentRequests: 1 }), diagnostics);
  const events = jobEvents('big', 13, { padBytes: 300 });
  const huge = jobEvent('huge', { padBytes: 3_000 });
  assert.equal(await d.send([...events.slice(0, 6), huge, ...events.slice(6)]), false);
  assert.deepEqual(acceptedNames(intake), namesOf(events));
  for (const r of intake.requests) if (r.outcome === 202) assert.ok(r.bodyBytes <= limit);
  const c = diagnostics.counters;
  assert.equal(c.dropped.too_large, 1);
  assert.equal(c.eventsSent, 13);
  assert.equal(c.eventsRetried, 0, 'a split is not a retry');
  assert.equal(diagnostics.totalDropped(), 1);
  assert.ok(lines.some((l) => l.includes('job "huge"') && /413/.test(l) && l.includes('Payload Too Large')), lines.join('\n'));
  await d.shutdown(1000);
});

test('400 when given events are present: bisected; all others delivered; each rejected one reported with the detail', { timeout: 15_000 }, async (t) => {
  const isBad = (r: IntakeRequest): boolean => r.events.some((e) => nameOf(e).startsWith('bad'));
  const intake = await startIntake({
    respond: (r) =>
      isBad(r) ? { status: 400, body: { errors: [{ status: '400', title: 'Bad Request', detail: 'Invalid pipeline event' }] } } : undefined,
  });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint), diagnostics);
  const good = jobEvents('good', 30);
  const bad = [jobEvent('bad-1'), jobEvent('bad-2')];
  const all = [...good.slice(0, 7), bad[0]!, ...good.slice(7, 20), bad[1]!, ...good.slice(20)];
  assert.equal(await d.send(all), false);
  assert.deepEqual(acceptedNames(intake), namesOf(good));
  const c = diagnostics.counters;
  assert.equal(c.dropped.rejected, 2);
  assert.equal(c.eventsSent, 30);
  assert.equal(c.eventsRetried, 0);
  // Bisection, not one request per event.
  assert.ok(c.requests < 20, `${c.requests} requests`);
  for (const name of ['bad-1', 'bad-2']) {
    assert.ok(
      lines.some((l) => l.includes(`job "${name}"`) && l.includes('Invalid pipeline event')),
      `${name} reported:\n${lines.join('\n')}`,
    );
  }
  await d.shutdown(1000);
});

test('401: not retried; one message naming the site, never the key; events dropped as unauthorized', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: () => ({ status: 401, body: { errors: [{ detail: 'Unauthorized' }] } }) });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchEvents: 3, maxConcurrentRequests: 1 }), diagnostics);
  assert.deepEqual(await Promise.all([d.send(jobEvents('u1', 3)), d.send(jobEvents('u2', 3))]), [false, false]);
  await d.shutdown(1000);
  const c = diagnostics.counters;
  assert.equal(c.requests, 2);
  assert.equal(c.eventsRetried, 0);
  assert.equal(c.dropped.unauthorized, 6);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /test\.example/);
  assert.match(lines[0]!, /API key or the site is wrong/);
  assert.doesNotMatch(lines.join('\n'), /test-api-key-0123456789/);
});

test('queue overflow under a long outage: memory bounded, the oldest dropped and counted, the rest delivered', { timeout: 15_000 }, async (t) => {
  let down = true;
  const intake = await startIntake({ respond: () => (down ? unavailable : undefined) });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(
    fastConfig(intake.endpoint, { maxBatchEvents: 10, maxConcurrentRequests: 1, maxQueuedEvents: 30 }),
    diagnostics,
  );
  const sends = Array.from({ length: 10 }, (_, i) => jobEvents(`s${i}`, 10));
  const results = [d.send(sends[0]!)];
  await new Promise((r) => setTimeout(r, 50));
  // s0 is in flight (retrying); s1..s9 wait; only 30 fit: s7..s9.
  for (const s of sends.slice(1)) results.push(d.send(s));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(diagnostics.counters.queued <= 40, `queued ${diagnostics.counters.queued}`);
  assert.equal(diagnostics.counters.dropped.queue_overflow, 60);
  down = false;
  const settled = await Promise.all(results);
  assert.deepEqual(settled, [true, false, false, false, false, false, false, true, true, true]);
  assert.deepEqual(acceptedNames(intake), namesOf([...sends[0]!, ...sends[7]!, ...sends[8]!, ...sends[9]!]));
  assert.equal(diagnostics.counters.eventsSent, 40);
  assert.ok(lines.some((l) => /queue is full/.test(l)));
  await d.shutdown(1000);
});

test('events that pass the age limit while waiting out an outage are dropped, not sent', { timeout: 15_000 }, async (t) => {
  let down = true;
  const intake = await startIntake({ respond: () => (down ? unavailable : undefined) });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  // A 1.5 s "18 hours" so the test runs in seconds.
  const d = createDelivery(fastConfig(intake.endpoint, { maxEventAgeMs: 1_500, maxConcurrentRequests: 1, maxBatchEvents: 5 }), diagnostics);
  const aging = jobEvents('aging', 8, { agoMs: 500 });
  const sent = d.send(aging);
  await new Promise((r) => setTimeout(r, 1_200));
  down = false;
  const fresh = jobEvents('fresh', 2, { agoMs: 0 });
  assert.equal(await sent, false);
  assert.equal(await d.send(fresh), true);
  assert.deepEqual(acceptedNames(intake), namesOf(fresh));
  assert.equal(diagnostics.counters.dropped.too_old, 8);
  await d.shutdown(1000);
});

test('retries exhausted without a spool: dropped as delivery_failed, with one message', { timeout: 15_000 }, async (t) => {
  const intake = await startIntake({ respond: () => unavailable });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { retry: { deadlineMs: 200 } }), diagnostics);
  assert.equal(await d.send(jobEvents('gone', 4)), false);
  assert.equal(diagnostics.counters.dropped.delivery_failed, 4);
  assert.ok(diagnostics.counters.requests >= 2);
  assert.ok(lines.some((l) => /could not deliver 4 event\(s\) to test\.example: HTTP 503/.test(l)), lines.join('\n'));
  await d.shutdown(1000);
});

test('chaos: mixed faults; every event settled exactly once and the counters add up', { timeout: 15_000 }, async (t) => {
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const intake = await startIntake({
    respond: (r) => {
      if (r.bodyBytes > 6_000) return { status: 413 };
      if (r.events.some((e) => nameOf(e).startsWith('bad'))) return { status: 400, body: { errors: [{ detail: 'no' }] } };
      const x = rnd();
      if (x < 0.2) return unavailable;
      if (x < 0.3) return { reset: true };
      if (x < 0.4) return { resetMidResponse: true };
      if (x < 0.5) return { delayMs: 20 };
      return undefined;
    },
  });
  t.after(() => intake.close());
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxBatchEvents: 25, maxConcurrentRequests: 3, retry: { deadlineMs: 10_000 } }), diagnostics);
  const good: ReturnType<typeof jobEvents> = [];
  const sends: Promise<boolean>[] = [];
  for (let i = 0; i < 20; i++) {
    const batch = jobEvents(`g${i}`, 10, { padBytes: 40 });
    good.push(...batch);
    sends.push(d.send(i % 7 === 3 ? [...batch, jobEvent(`bad-${i}`)] : batch));
  }
  await Promise.all(sends);
  await d.shutdown(2000);
  const c = diagnostics.counters;
  assert.deepEqual([...new Set(acceptedNames(intake))], namesOf(good));
  assert.ok(duplicatesAreIdentical(intake));
  assert.equal(c.dropped.rejected, 3);
  assert.equal(c.eventsSent + diagnostics.totalDropped() + c.spooled, 203);
  assert.equal(c.eventsSent, intake.acceptedCount());
  assert.equal(c.queued, 0);
  assert.equal(intake.invalid.length, 0);
});

test('a server that echoes the API key in its error detail: the key never reaches the log', { timeout: 15_000 }, async (t) => {
  const echo = (r: IntakeRequest): string => `bad header DD-API-KEY=${String(r.headers['dd-api-key'])}`;
  let n = 0;
  const intake = await startIntake({
    respond: (r) => (n++ % 2 === 0 ? { status: 400, body: { errors: [{ detail: echo(r) }] } } : { status: 404, body: echo(r) }),
  });
  t.after(() => intake.close());
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(intake.endpoint, { maxConcurrentRequests: 1 }), diagnostics);
  await d.send([jobEvent('one')]);
  await d.send([jobEvent('two')]);
  await d.shutdown(1000);
  assert.equal(diagnostics.counters.dropped.rejected, 1);
  assert.equal(diagnostics.counters.dropped.delivery_failed, 1);
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.ok(lines.every((l) => l.includes('[API key redacted]')), lines.join('\n'));
  assert.doesNotMatch(lines.join('\n'), /test-api-key-0123456789/);
});

test('a server that trickles its answer forever: each attempt is cut at requestTimeoutMs; shutdown keeps its deadline', { timeout: 15_000 }, async (t) => {
  // The intake has no trickle fault: a bare server that sends a 202 head, then a byte every 30 ms.
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      res.writeHead(202, { 'content-type': 'application/json' });
      const iv = setInterval(() => res.write(' '), 30);
      res.on('close', () => clearInterval(iv));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v2/ci/pipeline`;
  const { diagnostics } = recordingDiagnostics();
  const d = createDelivery(fastConfig(endpoint, { requestTimeoutMs: 250, retry: { deadlineMs: 60_000 } }), diagnostics);
  const sent = d.send(jobEvents('trickle', 3));
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(requests >= 2, `${requests} attempts: the first one was not cut`);
  const started = Date.now();
  await d.shutdown(400);
  assert.ok(Date.now() - started < 2_500, `shutdown took ${Date.now() - started} ms`);
  assert.equal(await sent, false);
  assert.equal(diagnostics.counters.eventsSent, 0, 'a 202 head without a complete body is not a delivery');
  assert.equal(diagnostics.counters.dropped.delivery_failed, 3);
});

test('endpoint refusing connections until shutdown: the shutdown line says why (the last failure)', { timeout: 15_000 }, async () => {
  // A port that was just free: connections to it are refused.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  const { diagnostics, lines } = recordingDiagnostics();
  const d = createDelivery(fastConfig(`http://127.0.0.1:${port}/api/v2/ci/pipeline`, { retry: { deadlineMs: 60_000 } }), diagnostics);
  void d.send(jobEvents('refused', 3));
  await new Promise((r) => setTimeout(r, 200));
  await d.shutdown(300);
  assert.equal(diagnostics.counters.dropped.delivery_failed + diagnostics.counters.dropped.shutdown, 3);
  const line = lines.find((l) => l.startsWith('shutdown:'));
  assert.ok(line, lines.join('\n'));
  assert.match(line, /last failure: .*ECONNREFUSED/);
});
