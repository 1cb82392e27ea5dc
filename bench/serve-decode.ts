// serve's protobuf decode alone, in CPU time per span: the reference path (the scan, protobufjs'
// decode into message objects, convert.ts) against decode-spans.ts (the scan, then protobufjs'
// Reader straight into ReceivedSpans), on the bench workload's spans as the SDK's OTLP/protobuf
// exporter sends them in 512-span requests. Alternated, 7 passes each, medians.
//
//   npx tsx bench/serve-decode.ts
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { driveExporter } from './contenders.js';
import { convertRequest } from '../src/receiver/convert.js';
import { decodeProto, scanProto } from '../src/receiver/decode-proto.js';
import { decodeProtoSpans } from '../src/receiver/decode-spans.js';
import { median } from './measure.js';
import { generate, TYPICAL } from './workload.js';

const spans = generate(150, TYPICAL, 5).spans;
// The bodies as the real exporter sends them, caught by a loopback server.
const bodies: Buffer[] = [];
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    bodies.push(Buffer.concat(chunks));
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end();
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const otlp = new OTLPTraceExporter({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces` });
await driveExporter(otlp, spans);
await otlp.shutdown();
server.close();
const n = spans.length;
const paths: Record<string, (b: Buffer) => unknown> = {
  'scan + protobufjs decode + convert (before)': (b) => convertRequest(decodeProto(b, 500_000)),
  'scan + decode-spans (serve now)': (b) => decodeProtoSpans(b, 500_000),
  'the scan alone': (b) => scanProto(b, 500_000),
};
const samples: Record<string, number[]> = {};
for (let pass = 0; pass < 8; pass++) {
  for (const [name, f] of Object.entries(paths)) {
    const c = process.cpuUsage();
    for (const b of bodies) f(b);
    const u = process.cpuUsage(c);
    // The first pass warms the JIT up.
    if (pass > 0) (samples[name] ??= []).push((u.user + u.system) / n);
  }
}
console.log(`${n} spans in ${bodies.length} requests, ${Math.round(bodies.reduce((a, b) => a + b.length, 0) / n)} bytes a span`);
for (const [name, xs] of Object.entries(samples)) console.log(`  ${name}: ${median(xs).toFixed(2)} µs of CPU a span (median of ${xs.length})`);
