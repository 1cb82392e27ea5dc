// serve end to end: the SDK's real OTLP/HTTP exporters (protobuf and JSON, gzip on and off) send
// CI pipelines to the receiver, which hands them to the exporter, which delivers them to the
// validating intake: every event arrives exactly once, exactly linked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROP_REASONS } from '../src/diagnostics.js';
import { assertAllValid, endInterleaved, openTree } from './support/trace-helpers.js';
import { assertPipelineArrived, get, otlpExporter, otlpProvider, pipelineSpec, spanCount, startServe, type ClientKind } from './support/otlp-serve.js';

const CLIENTS: Array<[ClientKind, boolean]> = [
  ['proto', false],
  ['proto', true],
  ['json', false],
  ['json', true],
];

for (const [kind, gzip] of CLIENTS) {
  test(`serve: OTLP/${kind === 'proto' ? 'protobuf' : 'JSON'} exporter${gzip ? ' with gzip' : ''} → every event arrives once, linked`, async (t) => {
    const serve = await startServe(t);
    const provider = otlpProvider(otlpExporter(serve.url, kind, gzip), { 'ci.provider_name': 'jenkins' });
    const tracer = provider.getTracer('ci');
    // Three pipelines ended interleaved, in batches of 7 spans: children and ancestors travel in
    // different requests.
    const specs = [0, 1, 2].map((i) => pipelineSpec(`${kind}-${gzip ? 'gz' : 'plain'}-p${i}`, 2, 2, 3));
    const trees = specs.map((s) => openTree(tracer, s));
    endInterleaved(...trees);
    await provider.shutdown();
    const total = specs.reduce((n, s) => n + spanCount(s), 0);
    await serve.intake.waitForEvents(total, 15_000);
    specs.forEach((s, i) => assertPipelineArrived(serve.intake, trees[i]!, s));
    assert.equal(serve.intake.events.length, total);
    assertAllValid(serve.intake);
    // Resource attributes of each ResourceSpans apply as in process.
    assert.ok(serve.intake.events.every((e) => e.attributes.provider_name === 'jenkins'), 'resource ci.provider_name applies to every event');
    assert.equal(serve.receiver.stats.spansReceived, total);
    assert.equal(serve.receiver.stats.spansRejected, 0);
    const metrics = (await get(serve.url, '/metrics')).body.toString();
    assert.match(metrics, new RegExp(`datadog_ci_pipeline_serve_spans_received_total ${total}\\n`));
    assert.match(metrics, new RegExp(`datadog_ci_pipeline_events_sent_total ${total}\\n`));
    assert.match(metrics, /datadog_ci_pipeline_serve_requests_total\{code="200"\} \d+/);
    // Dropped by reason (every reason, zero here), queue depth, held spans, draining.
    for (const reason of DROP_REASONS) assert.match(metrics, new RegExp(`datadog_ci_pipeline_events_dropped_total\\{reason="${reason}"\\} 0\n`));
    assert.match(metrics, /datadog_ci_pipeline_queue_depth 0\n/);
    assert.match(metrics, /datadog_ci_pipeline_pending_spans 0\n/);
    assert.match(metrics, /datadog_ci_pipeline_serve_draining 0\n/);
    assert.equal((await get(serve.url, '/healthz')).status, 200);
  });
}
