// serve's answers to what real exporters never send: each bad request gets its status and a
// google.rpc.Status body in the request's encoding, and the service keeps serving (/healthz
// after each).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { deflateSync, gzipSync } from 'node:zlib';
import { otlpTypes } from '../src/receiver/proto.js';
import { Receiver } from '../src/receiver/server.js';
import { captureBodies, get, pipelineSpec, post, startServe, type Answer, type Serve } from './support/otlp-serve.js';

const PROTO = { 'Content-Type': 'application/x-protobuf' };
const JSON_CT = { 'Content-Type': 'application/json' };

function protoStatus(a: Answer): { code: number; message: string } {
  assert.equal(a.headers['content-type'], 'application/x-protobuf');
  return otlpTypes().status.decode(a.body) as unknown as { code: number; message: string };
}

function jsonStatus(a: Answer): { code: number; message: string } {
  assert.equal(a.headers['content-type'], 'application/json');
  return JSON.parse(a.body.toString()) as { code: number; message: string };
}

async function healthy(serve: Serve): Promise<void> {
  const h = await get(serve.url, '/healthz');
  assert.equal(h.status, 200, 'still serving');
}

test('serve: malformed, truncated, oversized, bomb, wrong types: each its answer, then still healthy', async (t) => {
  const serve = await startServe(t, { receiver: { maxBodyBytes: 256 * 1024 } });
  const [real] = await captureBodies('proto', false, (i) => pipelineSpec(`p${i}`, 2, 2, 3), 1);
  assert.ok(real && real.body.length > 40);

  // The real body is accepted, plain and deflated.
  assert.equal((await post(serve.url, real.body, PROTO)).status, 200);
  assert.equal((await post(serve.url, deflateSync(real.body), { ...PROTO, 'Content-Encoding': 'deflate' })).status, 200);
  await healthy(serve);

  // Garbage protobuf: a length running past the end.
  let a = await post(serve.url, Buffer.from([0x0a, 0xff, 0x01, 0x02]), PROTO);
  assert.equal(a.status, 400);
  assert.match(protoStatus(a).message, /malformed OTLP\/protobuf/);
  assert.equal(protoStatus(a).code, 3);
  await healthy(serve);

  // Truncated real body.
  a = await post(serve.url, real.body.subarray(0, real.body.length - 7), PROTO);
  assert.equal(a.status, 400);
  await healthy(serve);

  // Wrong wire type for resource_spans (varint where a message must be).
  a = await post(serve.url, Buffer.from([0x08, 0x01]), PROTO);
  assert.equal(a.status, 400);
  assert.match(protoStatus(a).message, /wire type/);
  await healthy(serve);

  // Malformed JSON: the answer is JSON and does not echo the body.
  a = await post(serve.url, '{"resourceSpans": [ SECRET-BODY', JSON_CT);
  assert.equal(a.status, 400);
  assert.doesNotMatch(jsonStatus(a).message, /SECRET/);
  await healthy(serve);

  // JSON of the wrong shape.
  a = await post(serve.url, '{"resourceSpans": 5}', JSON_CT);
  assert.equal(a.status, 400);
  assert.equal(jsonStatus(a).code, 3);
  await healthy(serve);

  // Oversized on the wire: 413, readable (the upload is not reset).
  a = await post(serve.url, Buffer.alloc(1024 * 1024, 1), PROTO);
  assert.equal(a.status, 413);
  assert.match(protoStatus(a).message, /larger than the limit of 262144 bytes/);
  await healthy(serve);

  // Oversized without Content-Length (chunked upload): 413 too.
  a = await post(serve.url, Buffer.alloc(1024 * 1024, 1), { ...PROTO, 'Transfer-Encoding': 'chunked' });
  assert.equal(a.status, 413);
  await healthy(serve);

  // A gzip bomb: 64 MiB of zeros in ~64 KiB; refused once the output passes the limit.
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  assert.ok(bomb.length < 256 * 1024);
  a = await post(serve.url, bomb, { ...PROTO, 'Content-Encoding': 'gzip' });
  assert.equal(a.status, 413);
  assert.match(protoStatus(a).message, /decompressed request body is larger/);
  await healthy(serve);

  // Corrupt gzip.
  a = await post(serve.url, Buffer.from('not gzip at all'), { ...JSON_CT, 'Content-Encoding': 'gzip' });
  assert.equal(a.status, 400);
  assert.match(jsonStatus(a).message, /cannot be decompressed/);
  await healthy(serve);

  // Other content types and encodings.
  a = await post(serve.url, 'hello', { 'Content-Type': 'text/plain' });
  assert.equal(a.status, 415);
  assert.equal(protoStatus(a).code, 3);
  a = await post(serve.url, real.body, { ...PROTO, 'Content-Encoding': 'br' });
  assert.equal(a.status, 415);
  a = await post(serve.url, '', {}, 'GET', '/v1/traces');
  assert.equal(a.status, 405);
  await healthy(serve);

  // A span that cannot be one: partial_success, the others are kept.
  const body = JSON.stringify({
    resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [
      { traceId: 'zz', spanId: '0102030405060708', name: 'bad', startTimeUnixNano: '1', endTimeUnixNano: '2' },
      { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 'ok', startTimeUnixNano: 1700000000000000000, endTimeUnixNano: '1700000000000000001', kind: 1, status: { code: 2 } },
    ] }] }],
  });
  a = await post(serve.url, body, JSON_CT);
  assert.equal(a.status, 200);
  const r = JSON.parse(a.body.toString()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
  assert.equal(r.partialSuccess.rejectedSpans, '1');
  assert.match(r.partialSuccess.errorMessage, /span "bad".*trace_id "zz" is not hex/);
  await healthy(serve);

  const metrics = (await get(serve.url, '/metrics')).body.toString();
  for (const code of [200, 400, 405, 413, 415]) assert.match(metrics, new RegExp(`serve_requests_total\\{code="${code}"\\} [1-9]`));
  assert.match(metrics, /serve_spans_rejected_total 1\n/);
  // Bodies never reach the log.
  assert.ok(serve.lines.every((l) => !l.includes('SECRET')));
});

test('serve: a slow client is cut off after the header timeout; others are served meanwhile', async (t) => {
  const serve = await startServe(t, { receiver: { headersTimeoutMs: 400 } });
  const port = Number(new URL(serve.url).port);
  const started = Date.now();
  const closed = new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\n'));
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', () => undefined);
  });
  await healthy(serve);
  const answer = await closed;
  const took = Date.now() - started;
  assert.ok(took < 5_000, `cut off after ${took} ms`);
  assert.match(answer, /^HTTP\/1\.1 408 /);
  assert.match((await get(serve.url, '/metrics')).body.toString(), /serve_requests_total\{code="408"\} 1\n/);
  await healthy(serve);
});

test('serve: with a token, requests without the bearer token get 401; /healthz and /metrics stay open', async (t) => {
  const serve = await startServe(t, { receiver: { token: 's3cret-token' } });
  let a = await post(serve.url, '{}', JSON_CT);
  assert.equal(a.status, 401);
  assert.equal(jsonStatus(a).code, 16);
  a = await post(serve.url, '{}', { ...JSON_CT, Authorization: 'Bearer wrong' });
  assert.equal(a.status, 401);
  a = await post(serve.url, '{}', { ...JSON_CT, Authorization: 'Bearer s3cret-token' });
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), '{}');
  await healthy(serve);
  assert.equal((await get(serve.url, '/metrics')).status, 200);
  assert.ok(serve.lines.every((l) => !l.includes('s3cret')));
});

test('serve: 429 with Retry-After while the exporter is behind, then serves again', async (t) => {
  const callbacks: Array<() => void> = [];
  const sink = {
    export: (_spans: unknown[], cb: (r: { code: 0 }) => void) => callbacks.push(() => cb({ code: 0 })),
    getCounters: () => ({ queued: 0, pending: 0, eventsReady: 0, eventsSent: 0, spooled: 0, requests: 0, dropped: {} }) as never,
    shutdown: async () => undefined,
  };
  const receiver = new Receiver(sink as never, { port: 0, maxBacklog: 1, log: () => undefined });
  const { url } = await receiver.listen();
  t.after(() => receiver.drain());
  const span = { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 's', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001' };
  const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
  assert.equal((await post(url, body, JSON_CT)).status, 200);
  const a = await post(url, body, JSON_CT);
  assert.equal(a.status, 429);
  assert.equal(a.headers['retry-after'], '1');
  assert.equal(jsonStatus(a).code, 8);
  callbacks.shift()!();
  assert.equal((await post(url, body, JSON_CT)).status, 200);
});

test('serve: connections beyond the cap are refused; the service keeps serving', async (t) => {
  const serve = await startServe(t, { receiver: { maxConnections: 2 } });
  const port = Number(new URL(serve.url).port);
  const open = (): Promise<{ socket: Socket; closed: Promise<void> }> =>
    new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => resolve({ socket, closed: new Promise<void>((r) => socket.on('close', () => r())) }));
      socket.on('error', () => undefined);
      t.after(() => socket.destroy());
    });
  const a = await open();
  const b = await open();
  const third = await open();
  // The listener drops the third connection at once.
  await third.closed;
  a.socket.destroy();
  b.socket.destroy();
  await Promise.all([a.closed, b.closed]);
  await new Promise((r) => setTimeout(r, 50));
  await healthy(serve);
});

test('serve: answers in the request encoding: protobuf 200 and partial_success, 404, 405, 503 past the bytes held at once', async (t) => {
  const serve = await startServe(t, { receiver: { maxBufferedBytes: 4096 } });
  const { request, response } = otlpTypes();
  const span = (traceId: Buffer, name: string) => ({ traceId, spanId: Buffer.alloc(8, 2), name, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001' });
  const body = (...spans: object[]) => Buffer.from(request.encode(request.fromObject({ resourceSpans: [{ scopeSpans: [{ spans }] }] })).finish());

  // 200: an ExportTraceServiceResponse in protobuf, the request's encoding.
  let a = await post(serve.url, body(span(Buffer.alloc(16, 1), 'ok')), PROTO);
  assert.equal(a.status, 200);
  assert.equal(a.headers['content-type'], 'application/x-protobuf');
  assert.deepEqual(response.toObject(response.decode(a.body)), {});
  // partial_success in protobuf: rejected_spans and a message naming the span.
  a = await post(serve.url, body(span(Buffer.alloc(15, 1), 'short'), span(Buffer.alloc(16, 3), 'fine')), PROTO);
  assert.equal(a.status, 200);
  const r = response.toObject(response.decode(a.body), { longs: Number }) as { partialSuccess?: { rejectedSpans: number; errorMessage: string } };
  assert.equal(r.partialSuccess?.rejectedSpans, 1);
  assert.match(r.partialSuccess?.errorMessage ?? '', /span "short" .*trace_id must be 16 bytes, got 15/);

  // 404 and 405: a google.rpc.Status too, JSON when the request was JSON.
  a = await post(serve.url, '{}', JSON_CT, 'POST', '/v1/metrics');
  assert.equal(a.status, 404);
  assert.equal(jsonStatus(a).code, 5);
  a = await get(serve.url, '/nowhere');
  assert.equal(a.status, 404);
  assert.equal(protoStatus(a).code, 5);
  a = await post(serve.url, '', JSON_CT, 'PUT');
  assert.equal(a.status, 405);
  assert.equal(a.headers.allow, 'POST');
  assert.equal(jsonStatus(a).code, 12);

  // More request bytes than may be held at once (here 4 KiB, by default 4 × the body limit):
  // 503 + Retry-After, not 413: the same body fits once others have been read.
  a = await post(serve.url, Buffer.alloc(8192, 0x0a), PROTO);
  assert.equal(a.status, 503);
  assert.equal(a.headers['retry-after'], '1');
  assert.equal(protoStatus(a).code, 14);
  await healthy(serve);
  assert.equal((await post(serve.url, body(span(Buffer.alloc(16, 4), 'after')), PROTO)).status, 200);
});

test('serve: 429 + Retry-After when the exporter has as many events queued as the backlog allows', async (t) => {
  let queued = 5;
  const sink = {
    export: (_spans: unknown[], cb: (r: { code: 0 }) => void) => cb({ code: 0 }),
    getCounters: () => ({ queued, pending: 0, eventsReady: 0, eventsSent: 0, spooled: 0, requests: 0, dropped: {} }) as never,
    shutdown: async () => undefined,
  };
  const receiver = new Receiver(sink as never, { port: 0, maxBacklog: 5, log: () => undefined });
  const { url } = await receiver.listen();
  t.after(() => receiver.drain());
  let a = await post(url, '{}', JSON_CT);
  assert.equal(a.status, 429);
  assert.equal(a.headers['retry-after'], '1');
  queued = 4;
  a = await post(url, '{}', JSON_CT);
  assert.equal(a.status, 200);
});

test('serve: the defaults: a 20 MiB body limit, a 10 s header timeout; a body that trickles is cut off at the request timeout', async (t) => {
  const sink = { export: (_s: unknown[], cb: (r: { code: 0 }) => void) => cb({ code: 0 }), getCounters: () => ({ queued: 0 }) as never, shutdown: async () => undefined };
  const defaults = new Receiver(sink as never, { port: 0, log: () => undefined });
  const { url } = await defaults.listen();
  t.after(() => defaults.drain());
  assert.equal(defaults.server.headersTimeout, 10_000);
  const limit = 20 * 1024 * 1024;
  let a = await post(url, Buffer.alloc(limit + 1, 0x0a), PROTO);
  assert.equal(a.status, 413);
  assert.match(protoStatus(a).message, new RegExp(`limit of ${limit} bytes`));
  // Exactly the limit is read (and refused by the decoder's message count, not by its size).
  a = await post(url, Buffer.alloc(limit, 0), PROTO);
  assert.notEqual(a.status, 413);

  const serve = await startServe(t, { receiver: { headersTimeoutMs: 300, requestTimeoutMs: 600 } });
  const port = Number(new URL(serve.url).port);
  const answer = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n0123456789'));
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.on('error', () => undefined);
  });
  assert.match(answer, /^HTTP\/1\.1 408 /);
  await healthy(serve);
});
