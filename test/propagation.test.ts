// envForChildProcess / parentFromEnv: the W3C env carriers, the CI lineage as DD_CI_* variables,
// and a real child process whose step lands under the right job of the parent's pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { context as apiContext, propagation, ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor, envForChildProcess, parentFromEnv } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { startIntake } from '../testkit/intake.js';

const under = (parent: Span) => trace.setSpan(ROOT_CONTEXT, parent);

test('parentFromEnv with nothing in the env: ROOT_CONTEXT and no attributes', () => {
  const got = parentFromEnv({});
  assert.equal(got.context, ROOT_CONTEXT);
  assert.deepEqual(got.attributes, {});
  assert.deepEqual(parentFromEnv({ TRACEPARENT: '', DD_CI_JOB_ID: ' ' }), { context: ROOT_CONTEXT, attributes: {} });
});

test('parentFromEnv: a remote parent from TRACEPARENT/TRACESTATE/BAGGAGE; malformed traceparents start a new trace', () => {
  const env = {
    TRACEPARENT: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    TRACESTATE: 'vendor=abc,other=x',
    BAGGAGE: 'team=ci%20ops,build.id=42;prop=1',
  };
  const { context } = parentFromEnv(env);
  const sc = trace.getSpanContext(context);
  assert.deepEqual({ traceId: sc?.traceId, spanId: sc?.spanId, traceFlags: sc?.traceFlags, isRemote: sc?.isRemote }, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: 1,
    isRemote: true,
  });
  assert.equal(sc?.traceState?.get('vendor'), 'abc');
  assert.equal(propagation.getBaggage(context)?.getEntry('team')?.value, 'ci ops');
  assert.equal(propagation.getBaggage(context)?.getEntry('build.id')?.value, '42');
  // A member named __proto__ is a member like any other (assigned into an object, it was lost).
  const proto = propagation.getBaggage(parentFromEnv({ ...env, BAGGAGE: '__proto__=p,team=t' }).context);
  assert.deepEqual([proto?.getEntry('__proto__')?.value, proto?.getEntry('team')?.value], ['p', 't']);
  for (const bad of ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-00000000000000000000000000000000-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra']) {
    assert.equal(trace.getSpanContext(parentFromEnv({ TRACEPARENT: bad }).context), undefined, bad);
  }
});

test('envForChildProcess carries trace context, lineage and settings; parentFromEnv reads them back; stale values are cleared', async (t) => {
  const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', shutdownTimeoutMs: 100, env: 'staging', service: 'builds', providerName: 'jenkins', logger: () => undefined });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({}), spanProcessors: [new DatadogCIPipelineSpanProcessor(exporter, { runningEvents: false })] });
  t.after(() => provider.shutdown().catch(() => undefined));
  const tracer = provider.getTracer('t');
  const pipeline = tracer.startSpan('release', { attributes: { 'ci.level': 'pipeline', 'ci.unique_id': 'p-1' } });
  const stage = tracer.startSpan('build', { attributes: { 'ci.level': 'stage' } }, under(pipeline));
  const glue = tracer.startSpan('make', {}, under(stage));
  const job = tracer.startSpan('compile', { attributes: { 'ci.level': 'job', 'ci.id': 'job-7' } }, under(glue));
  const bag = propagation.setBaggage(apiContext.active(), propagation.createBaggage({ team: { value: 'a,b' } }));
  const env = envForChildProcess(glue, bag);
  const stageId = `${stage.spanContext().traceId.slice(0, 8)}-${stage.spanContext().traceId.slice(8, 12)}-${stage.spanContext().traceId.slice(12, 16)}-${stage.spanContext().spanId.slice(0, 4)}-${stage.spanContext().spanId.slice(4)}`;
  assert.deepEqual(env, {
    TRACEPARENT: `00-${glue.spanContext().traceId}-${glue.spanContext().spanId}-01`,
    TRACESTATE: '',
    BAGGAGE: 'team=a%2Cb',
    DD_CI_PARENT_LEVEL: 'stage',
    DD_CI_PIPELINE_UNIQUE_ID: 'p-1',
    DD_CI_PIPELINE_NAME: 'release',
    DD_CI_STAGE_ID: stageId,
    DD_CI_STAGE_NAME: 'build',
    DD_CI_JOB_ID: '',
    DD_CI_JOB_NAME: '',
    DD_CI_PIPELINE_ENDPOINT: 'http://127.0.0.1:9/api/v2/ci/pipeline',
    DD_ENV: 'staging',
    DD_CI_PIPELINE_SERVICE: 'builds',
    DD_CI_PIPELINE_PROVIDER_NAME: 'jenkins',
  });
  // A stale job from further up is overwritten by the empty value, so the child does not see it.
  const stale: NodeJS.ProcessEnv = { DD_CI_JOB_ID: 'stale', DD_CI_JOB_NAME: 'stale' };
  const back = parentFromEnv({ ...process.env, ...stale, ...env });
  assert.deepEqual(back.attributes, { 'ci.pipeline_unique_id': 'p-1', 'ci.pipeline_name': 'release', 'ci.stage_id': stageId, 'ci.stage_name': 'build' });
  assert.equal(back.parentLevel, 'stage');
  assert.equal(trace.getSpanContext(back.context)?.spanId, glue.spanContext().spanId);
  assert.equal(parentFromEnv(envForChildProcess(job)).attributes['ci.job_id'], 'job-7');
  assert.equal(parentFromEnv(envForChildProcess(job)).parentLevel, 'job');
  for (const s of [job, glue, stage, pipeline]) s.end();
});

test('a job whose parent is in another process passes its explicit stage and pipeline links on to its own children', async (t) => {
  const exporter = new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', shutdownTimeoutMs: 100, logger: () => undefined });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({}), spanProcessors: [new DatadogCIPipelineSpanProcessor(exporter, { runningEvents: false })] });
  t.after(() => provider.shutdown().catch(() => undefined));
  const parent = parentFromEnv({
    TRACEPARENT: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    DD_CI_PARENT_LEVEL: 'stage',
    DD_CI_PIPELINE_UNIQUE_ID: 'p-9',
    DD_CI_PIPELINE_NAME: 'nightly',
    DD_CI_STAGE_ID: 's-3',
    DD_CI_STAGE_NAME: 'test',
  });
  const job = provider.getTracer('t').startSpan('unit', { attributes: { ...parent.attributes, 'ci.level': 'job', 'ci.id': 'j-1' } }, parent.context);
  const next = parentFromEnv(envForChildProcess(job));
  assert.deepEqual(next.attributes, {
    'ci.pipeline_unique_id': 'p-9',
    'ci.pipeline_name': 'nightly',
    'ci.stage_id': 's-3',
    'ci.stage_name': 'test',
    'ci.job_id': 'j-1',
    'ci.job_name': 'unit',
  });
  assert.equal(trace.getSpanContext(next.context)?.traceId, '0af7651916cd43dd8448eb211c80319c');
  job.end();
});

test('envForChildProcess for a span no processor saw: the trace context alone, said once', () => {
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({}) });
  const span = provider.getTracer('t').startSpan('unseen', { attributes: { 'ci.level': 'job' } });
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    assert.deepEqual(Object.keys(envForChildProcess(span)).sort(), ['BAGGAGE', 'TRACEPARENT', 'TRACESTATE']);
    envForChildProcess(span);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(written.length, 1);
  assert.match(written[0]!, /no DatadogCIPipelineSpanProcessor saw span "[0-9a-f]{16}"/);
  span.end();
});

test('the endpoint option falls back to DD_CI_PIPELINE_ENDPOINT (no API key needed for it, as for the option)', () => {
  const r = resolveOptions({}, { DD_CI_PIPELINE_ENDPOINT: 'http://127.0.0.1:8126/api/v2/ci/pipeline' });
  assert.ok(r.ok);
  assert.equal(r.options.delivery.endpoint, 'http://127.0.0.1:8126/api/v2/ci/pipeline');
  const option = resolveOptions({ endpoint: 'http://127.0.0.1:1/x' }, { DD_CI_PIPELINE_ENDPOINT: 'http://127.0.0.1:2/y' });
  assert.ok(option.ok);
  assert.equal(option.options.delivery.endpoint, 'http://127.0.0.1:1/x');
});

test('a child process started with envForChildProcess and using parentFromEnv lands under the right job', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined });
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({}), spanProcessors: [new DatadogCIPipelineSpanProcessor(exporter, { scheduledDelayMs: 20 })] });
  t.after(() => provider.shutdown());
  const tracer = provider.getTracer('t');
  const pipeline = tracer.startSpan('nightly', { attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example/n' } });
  const stage = tracer.startSpan('test', { attributes: { 'ci.level': 'stage' } }, under(pipeline));
  const jobA = tracer.startSpan('unit', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example/n/a' } }, under(stage));
  const jobB = tracer.startSpan('lint', { attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example/n/b' } }, under(stage));
  const script = fileURLToPath(new URL('./support/child-step.ts', import.meta.url));
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1', ...envForChildProcess(jobB) };
  delete childEnv.DD_API_KEY;
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', script, 'eslint .'], { env: childEnv }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
  });
  for (const s of [jobA, jobB, stage, pipeline]) s.end();
  await provider.forceFlush();
  const events = intake.events.map((e) => e.attributes.resource);
  const step = events.find((r) => r.name === 'eslint .');
  const job = events.find((r) => r.name === 'lint' && r.status === 'success');
  const pipe = events.find((r) => r.name === 'nightly' && r.status === 'success');
  const st = events.find((r) => r.name === 'test');
  assert.ok(step && job && pipe && st, JSON.stringify(events));
  assert.equal(step.job_id, job.id);
  assert.equal(step.job_name, 'lint');
  assert.equal(step.stage_id, st.id);
  assert.equal(step.stage_name, 'test');
  assert.equal(step.pipeline_unique_id, pipe.unique_id);
  assert.equal(step.pipeline_name, 'nightly');
  assert.deepEqual(intake.invalid, []);
});
