// The bin in a real child process: `serve` prints where it listens, takes spans from a real
// OTLP exporter, and on SIGTERM stops accepting, delivers everything it received, exits 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXPORTER_FLAGS } from '../src/cli/exporter-options.js';
import { SERVE_FLAGS } from '../src/cli/serve.js';
import { startIntake } from '../testkit/intake.js';
import { assertAllValid } from './support/trace-helpers.js';
import { assertPipelineArrived, get, pipelineSpec, post, sendPipelines, spanCount, startBin } from './support/otlp-serve.js';

/** Polls `cond` every 20 ms (a test's own deadline bounds the wait). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

test('serve (bin): SIGTERM with spans in flight loses nothing and exits 0 within shutdownTimeoutMs', async (t) => {
  // Every delivery takes 300 ms: at SIGTERM, events are still queued or in flight.
  const intake = await startIntake({ respond: () => ({ delayMs: 300 }) });
  t.after(() => intake.close());
  const bin = startBin(['--port', '0', '--endpoint', intake.endpoint, '--max-batch-events', '20', '--shutdown-timeout-ms', '20000'], { DD_API_KEY: 'test-key-not-logged' });
  t.after(() => bin.child.kill('SIGKILL'));
  const url = await bin.listening;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

  const specs = [0, 1, 2, 3].map((i) => pipelineSpec(`term-p${i}`, 2, 3, 4));
  // Every span has been answered 200 by serve...
  const { provider, trees } = await sendPipelines(url, 'proto', true, specs);
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

test('serve (bin): while draining, /healthz answers 503 and new spans get 503 + Retry-After; then all is delivered, exit 0', { timeout: 60_000 }, async (t) => {
  // The intake holds every answer until the test opens the gate: the drain lasts as long as the
  // test needs, with no timing to race.
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const intake = await startIntake({ respond: async () => { await gate; return undefined; } });
  t.after(async () => {
    open();
    await intake.close();
  });
  const bin = startBin(['--port', '0', '--endpoint', intake.endpoint, '--shutdown-timeout-ms', '30000']);
  t.after(() => bin.child.kill('SIGKILL'));
  const url = await bin.listening;
  const spec = pipelineSpec('drain-p', 1, 2, 2);
  const { provider, trees: [tree] } = await sendPipelines(url, 'proto', false, [spec]);
  assert.equal((await get(url, '/healthz')).status, 200);
  await until(() => intake.requests.length > 0); // delivery has begun and waits at the gate

  bin.child.kill('SIGTERM');
  await until(() => /SIGTERM: draining/.test(bin.err()));
  const health = await get(url, '/healthz');
  assert.equal(health.status, 503, 'draining is visible to probes');
  assert.equal(health.body.toString(), 'draining\n');
  const late = { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 'late', startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000000000001', attributes: [{ key: 'ci.level', value: { stringValue: 'pipeline' } }] };
  const refused = await post(url, JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [late] }] }] }), { 'Content-Type': 'application/json' });
  assert.equal(refused.status, 503, 'new spans are refused while draining');
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal((JSON.parse(refused.body.toString()) as { code: number }).code, 14, 'google.rpc.Code UNAVAILABLE');
  assert.match((await get(url, '/metrics')).body.toString(), /datadog_ci_pipeline_serve_draining 1\n/);
  assert.equal(bin.child.exitCode, null, 'still draining: nothing was delivered yet');

  open();
  assert.equal(await bin.exited, 0, bin.err());
  assert.equal(intake.events.length, spanCount(spec), bin.err());
  assertPipelineArrived(intake, tree!, spec);
  assertAllValid(intake);
  assert.ok(intake.events.every((e) => e.attributes.resource.name !== 'late'), 'the refused span was not taken');
  await provider.shutdown();
});

test('serve (bin): --help lists every flag; an API key flag is refused; a bad flag exits 2', async () => {
  // Three processes at once: each pays the TypeScript loader's start-up.
  const help = startBin(['--help']);
  const key = startBin(['--api-key', 'abc123secret']);
  const bad = startBin(['--port', 'x']);
  assert.equal(await help.exited, 0);
  // Every flag: the receiver's own and every exporter option's.
  for (const { flag } of [...SERVE_FLAGS, ...EXPORTER_FLAGS]) assert.match(help.out(), new RegExp(`  --${flag} `), `--help lists --${flag}`);
  for (const v of ['DD_API_KEY', 'DD_SITE', 'DD_CI_PIPELINE_ENDPOINT', 'DD_CI_PIPELINE_SERVE_TOKEN']) assert.ok(help.out().includes(v), `--help names ${v}`);
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

test('serve (bin): token and endpoint from the environment, the API key from --api-key-file; no warning beyond loopback with a token; SIGINT delivers', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const dir = mkdtempSync(join(tmpdir(), 'serve-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'key'), 'key-from-file-0123\n');
  const bin = startBin(['--host', '0.0.0.0', '--port', '0', '--api-key-file', join(dir, 'key')], { DD_CI_PIPELINE_SERVE_TOKEN: 'env-token-4567', DD_CI_PIPELINE_ENDPOINT: intake.endpoint, DD_API_KEY: '' });
  t.after(() => bin.child.kill('SIGKILL'));
  const url = (await bin.listening).replace('0.0.0.0', '127.0.0.1');
  const span = { traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 'env-pipeline', startTimeUnixNano: String(BigInt(Date.now() - 1000) * 1_000_000n), endTimeUnixNano: String(BigInt(Date.now()) * 1_000_000n), attributes: [{ key: 'ci.level', value: { stringValue: 'pipeline' } }, { key: 'ci.url', value: { stringValue: 'https://ci.example/1' } }] };
  const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
  assert.equal((await post(url, body, { 'Content-Type': 'application/json' })).status, 401);
  assert.equal((await post(url, body, { 'Content-Type': 'application/json', Authorization: 'Bearer env-token-4567' })).status, 200);
  // SIGINT drains like SIGTERM: the span received is delivered before the exit.
  bin.child.kill('SIGINT');
  assert.equal(await bin.exited, 0, bin.err());
  assert.equal(intake.events.length, 1, bin.err());
  assert.equal(intake.requests[0]!.headers['dd-api-key'], 'key-from-file-0123');
  assert.doesNotMatch(bin.err(), /warning: listening/);
  assert.ok(!bin.err().includes('env-token-4567') && !bin.err().includes('key-from-file-0123'), 'neither the token nor the key is logged');
});

test('serve (bin): SIGTERM while Datadog is unreachable: spools what it received, exits 0; the next serve sends it', { timeout: 60_000 }, async (t) => {
  const spool = mkdtempSync(join(tmpdir(), 'serve-spool-'));
  t.after(() => rmSync(spool, { recursive: true, force: true }));
  // Port 9 (discard) refuses connections: every delivery fails and is retried until the deadline.
  const down = startBin(['--port', '0', '--endpoint', 'http://127.0.0.1:9/api/v2/ci/pipeline', '--spool-dir', spool, '--shutdown-timeout-ms', '3000']);
  t.after(() => down.child.kill('SIGKILL'));
  const url = await down.listening;
  const spec = pipelineSpec('spooled-p', 1, 2, 2);
  const { provider, trees: [tree] } = await sendPipelines(url, 'json', true, [spec]);
  down.child.kill('SIGTERM');
  assert.equal(await down.exited, 0, down.err());
  assert.ok(readdirSync(spool).length > 0, 'the spool holds the undelivered events');
  // What the spool holds, for the message should the next serve fall short.
  const spooled = readdirSync(spool).map((f) => {
    try {
      return `${f}: ${(JSON.parse(readFileSync(join(spool, f), 'utf8')) as { events?: unknown[] }).events?.length ?? '?'} event(s)`;
    } catch (e) {
      return `${f}: unreadable (${(e as Error).message})`;
    }
  });

  const intake = await startIntake();
  t.after(() => intake.close());
  const next = startBin(['--port', '0', '--endpoint', intake.endpoint, '--spool-dir', spool]);
  t.after(() => next.child.kill('SIGKILL'));
  await next.listening;
  try {
    await intake.waitForEvents(spanCount(spec), 20_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}\nspooled: ${spooled.join('; ')}\nfirst serve's stderr:\n${down.err()}\nnext serve's stderr:\n${next.err()}`);
  }
  next.child.kill('SIGTERM');
  assert.equal(await next.exited, 0, next.err());
  assert.equal(intake.events.length, spanCount(spec));
  assertPipelineArrived(intake, tree!, spec);
  await provider.shutdown();
});
