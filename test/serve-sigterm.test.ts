// The bin in a real child process: `serve` prints where it listens, takes spans from a real
// OTLP exporter, and on SIGTERM stops accepting, delivers everything it received, exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startIntake } from '../testkit/intake.js';
import { assertAllValid, endInterleaved, openTree } from './support/trace-helpers.js';
import { assertPipelineArrived, otlpExporter, otlpProvider, pipelineSpec, spanCount, startBin } from './support/otlp-serve.js';

test('serve (bin): SIGTERM with spans in flight loses nothing and exits 0 within shutdownTimeoutMs', async (t) => {
  // Every delivery takes 300 ms: at SIGTERM, events are still queued or in flight.
  const intake = await startIntake({ respond: () => ({ delayMs: 300 }) });
  t.after(() => intake.close());
  const bin = startBin(['--port', '0', '--endpoint', intake.endpoint, '--max-batch-events', '20', '--shutdown-timeout-ms', '20000'], { DD_API_KEY: 'test-key-not-logged' });
  t.after(() => bin.child.kill('SIGKILL'));
  const url = await bin.listening;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const provider = otlpProvider(otlpExporter(url, 'proto', true));
  const tracer = provider.getTracer('ci');
  const specs = [0, 1, 2, 3].map((i) => pipelineSpec(`term-p${i}`, 2, 3, 4));
  const trees = specs.map((s) => openTree(tracer, s));
  endInterleaved(...trees);
  // Every span has been answered 200 by serve...
  await provider.forceFlush();
  const total = specs.reduce((n, s) => n + spanCount(s), 0);
  assert.ok(intake.acceptedCount() < total, 'some events are still on their way at SIGTERM');
  const started = Date.now();
  bin.child.kill('SIGTERM');
  const code = await bin.exited;
  const took = Date.now() - started;
  assert.equal(code, 0, bin.err());
  assert.ok(took < 20_000, `exited after ${took} ms`);
  // ...and every one of them reached the intake before serve exited.
  assert.equal(intake.events.length, total, bin.err());
  specs.forEach((s, i) => assertPipelineArrived(intake, trees[i]!, s));
  assertAllValid(intake);
  assert.match(bin.err(), /SIGTERM: draining/);
  assert.ok(!bin.err().includes('test-key-not-logged'));
  await provider.shutdown();
});

test('serve (bin): --help lists every flag; an API key flag is refused; a bad flag exits 2', async () => {
  // Three processes at once: each pays the TypeScript loader's start-up.
  const help = startBin(['--help']);
  const key = startBin(['--api-key', 'abc123secret']);
  const bad = startBin(['--port', 'x']);
  assert.equal(await help.exited, 0);
  for (const flag of ['--host', '--port', '--endpoint', '--token', '--api-key-file', '--max-body-bytes', '--max-connections', '--headers-timeout-ms', '--shutdown-timeout-ms', '--spool-dir']) {
    assert.ok(help.out().includes(flag), `--help lists ${flag}`);
  }
  assert.equal(await key.exited, 2);
  assert.match(key.err(), /DD_API_KEY/);
  assert.ok(!key.err().includes('abc123secret'));
  assert.equal(await bad.exited, 2);
});

test('serve (bin): warns when listening beyond loopback without a token', async (t) => {
  const bin = startBin(['--host', '0.0.0.0', '--port', '0', '--endpoint', 'http://127.0.0.1:9/api/v2/ci/pipeline']);
  t.after(() => bin.child.kill('SIGKILL'));
  await bin.listening;
  assert.match(bin.err(), /warning: listening on 0\.0\.0\.0 without a token/);
  bin.child.kill('SIGINT');
  assert.equal(await bin.exited, 0);
});
