// Scale-out by trace ID: three serve instances behind a small router that does what the
// collector's loadbalancing exporter does with `routing_key: traceID` (decodes each request with
// the receiver's own decoder, sends each trace's spans to one instance chosen by its trace ID).
// Many pipelines from real OTLP exporters, interleaved: every one arrives complete, exactly
// once, exactly linked, and every instance took a share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { decodeProto } from '../src/receiver/decode-proto.js';
import { otlpTypes } from '../src/receiver/proto.js';
import { startIntake } from '../testkit/intake.js';
import { assertAllValid, endInterleaved, openTree } from './support/trace-helpers.js';
import { assertPipelineArrived, otlpExporter, otlpProvider, pipelineSpec, spanCount, startServe } from './support/otlp-serve.js';

type Msg = Record<string, unknown>;

function forward(url: string, body: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL('/v1/traces', url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'Content-Type': 'application/x-protobuf', 'Content-Length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A trace-ID router: one request in, one request per instance that has spans of it out. */
async function startRouter(backends: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const { request: type } = otlpTypes();
  // Each trace ID gets an instance the first time it is seen, the next one in turn, and keeps it:
  // a fixed function of the trace ID, as a hash ring is, that also gives every instance a share
  // (a hash of 12 random trace IDs left one of 3 instances without any about 2 % of the time).
  const slots = new Map<string, number>();
  const pick = (traceId: Uint8Array): number => {
    const key = Buffer.from(traceId).toString('hex');
    let slot = slots.get(key);
    if (slot === undefined) {
      slot = slots.size % backends.length;
      slots.set(key, slot);
    }
    return slot;
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const decoded = decodeProto(body, 1_000_000) as { resourceSpans: Msg[] };
        const parts = backends.map(() => [] as Msg[]);
        for (const rs of decoded.resourceSpans) {
          for (const ss of rs.scopeSpans as Msg[]) {
            const bySlot = new Map<number, Msg[]>();
            for (const span of ss.spans as Msg[]) {
              const slot = pick(span.traceId as Uint8Array);
              bySlot.set(slot, [...(bySlot.get(slot) ?? []), span]);
            }
            for (const [slot, spans] of bySlot) parts[slot]!.push({ resource: rs.resource, schemaUrl: rs.schemaUrl, scopeSpans: [{ scope: ss.scope, spans }] });
          }
        }
        const statuses = await Promise.all(parts.map((p, i) => (p.length > 0 ? forward(backends[i]!, type.encode({ resourceSpans: p }).finish()) : 200)));
        const worst = statuses.find((s) => s !== 200) ?? 200;
        res.writeHead(worst, { 'Content-Type': 'application/x-protobuf' }).end();
      })().catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('scale-out: three serve instances behind a trace-ID router; every pipeline complete, once, linked', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const instances = await Promise.all([0, 1, 2].map(() => startServe(t, { intake })));
  const router = await startRouter(instances.map((s) => s.url));
  t.after(() => router.close());

  // Two real OTLP/protobuf exporters (one gzip), each sending six pipelines ended interleaved in
  // batches of 5 spans: every request mixes traces, and every trace spans many requests.
  const providers = [otlpProvider(otlpExporter(router.url, 'proto', false), {}, 5), otlpProvider(otlpExporter(router.url, 'proto', true), {}, 5)];
  const specs = Array.from({ length: 12 }, (_, i) => pipelineSpec(`scale-p${i}`, 2, 2, 3));
  const trees = specs.map((s, i) => openTree(providers[i % 2]!.getTracer('ci'), s));
  endInterleaved(...trees);
  await Promise.all(providers.map((p) => p.shutdown()));
  const total = specs.reduce((n, s) => n + spanCount(s), 0);
  await intake.waitForEvents(total, 20_000);
  await Promise.all(instances.map((s) => s.close()));

  assert.equal(intake.events.length, total, 'each event exactly once');
  specs.forEach((s, i) => assertPipelineArrived(intake, trees[i]!, s));
  assertAllValid(intake);
  const shares = instances.map((s) => s.receiver.stats.spansReceived);
  assert.equal(shares.reduce((a, b) => a + b, 0), total);
  assert.ok(shares.every((n) => n > 0), `every instance took a share: ${shares.join(', ')}`);
  // Nothing was orphaned or held: each instance saw whole traces.
  for (const s of instances) {
    const c = s.exporter.getCounters();
    assert.equal(c.dropped.orphaned, 0);
    assert.equal(c.pending, 0);
  }
});
