// End to end: real spans from a BasicTracerProvider, exported in tiny batches (so children and
// their ancestors arrive in different export() calls), through the exporter, into an intake that
// validates every request against the official schema and the prose rules. Each test checks what
// Datadog would have stored, and that no request was invalid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { startIntake } from '../testkit/intake.js';
import {
  assertAllValid,
  ci,
  endInterleaved,
  ExportResultCode,
  exportDirect,
  hrTime,
  linesWith,
  namesOf,
  openTree,
  recordTree,
  resourceNamed,
  runTree,
  SHA,
  SHA2,
  startHarness,
  uuidOfSpan,
  uuidOfTrace,
  type Res,
  type SpanSpec,
} from './support/trace-helpers.js';

// The exporter reads these as defaults; a developer's shell must not change what the tests see.
for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const HOUR = 3_600_000;

/** pipeline → stage → job → step, the common shape. */
function classicBuild(p = 'build'): SpanSpec {
  return {
    name: p,
    attributes: ci('pipeline', p),
    children: [
      {
        name: `${p}/stage`,
        attributes: ci('stage', `${p}/stage`),
        children: [
          {
            name: `${p}/job`,
            attributes: ci('job', `${p}/job`),
            children: [{ name: `${p}/step`, attributes: ci('step', `${p}/step`) }],
          },
        ],
      },
    ],
  };
}

function has(r: Res, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(r, key);
}

// ---------------------------------------------------------------------------------------------
// Hierarchy through real exports
// ---------------------------------------------------------------------------------------------

test('unlabelled spans in between are walked through: job → "spawn" → step links to the job', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const spans = runTree(h.tracer, {
    name: 'release',
    attributes: ci('pipeline', 'release'),
    children: [
      {
        name: 'GET /config',
        attributes: { 'http.request.method': 'GET' },
        children: [
          {
            name: 'package',
            attributes: ci('stage', 'package'),
            children: [
              {
                name: 'tarball',
                attributes: ci('job', 'tarball'),
                children: [
                  {
                    name: 'spawn',
                    attributes: { 'process.command': 'sh' },
                    children: [{ name: 'phase', children: [{ name: 'tar czf', attributes: ci('step', 'tar czf') }] }],
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
  });
  await h.flush();

  assert.deepEqual(namesOf(h.intake), ['package', 'release', 'tar czf', 'tarball']);
  // The chain really crossed export() calls: otherwise this test would not exercise holding.
  assert.ok(h.exportCalls.length >= 4, `only ${h.exportCalls.length} export() calls`);
  const pipeline = resourceNamed(h.intake, 'release');
  const stage = resourceNamed(h.intake, 'package');
  const job = resourceNamed(h.intake, 'tarball');
  const step = resourceNamed(h.intake, 'tar czf');
  assert.equal(step.job_id, job.id);
  assert.equal(step.job_name, 'tarball');
  assert.equal(step.stage_id, stage.id);
  assert.equal(step.stage_name, 'package');
  assert.equal(step.pipeline_unique_id, pipeline.unique_id);
  assert.equal(step.pipeline_name, 'release');
  assert.equal(job.stage_id, stage.id);
  assert.equal(stage.pipeline_unique_id, pipeline.unique_id);
  assert.equal(step.id, uuidOfSpan(spans.get('tar czf')!));
  assert.equal(h.lines.length, 0, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('a job directly under a pipeline (no stage) links to the pipeline and carries no stage fields', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'ci',
    attributes: ci('pipeline', 'ci'),
    children: [{ name: 'lint', attributes: ci('job', 'lint'), children: [{ name: 'eslint', attributes: ci('step', 'eslint') }] }],
  });
  await h.flush();

  const pipeline = resourceNamed(h.intake, 'ci');
  const job = resourceNamed(h.intake, 'lint');
  const step = resourceNamed(h.intake, 'eslint');
  assert.equal(job.pipeline_unique_id, pipeline.unique_id);
  assert.equal(job.pipeline_name, 'ci');
  assert.ok(!has(job, 'stage_id') && !has(job, 'stage_name'), JSON.stringify(job));
  assert.equal(step.job_id, job.id);
  assert.equal(step.job_name, 'lint');
  assert.ok(!has(step, 'stage_id') && !has(step, 'stage_name'), JSON.stringify(step));
  assert.equal(h.intake.events.length, 3);
  assertAllValid(h.intake);
});

test('a step directly under a stage, and a step directly under a pipeline', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'ci',
    attributes: ci('pipeline', 'ci'),
    children: [
      { name: 'build', attributes: ci('stage', 'build'), children: [{ name: 'prepare', attributes: ci('step', 'prepare') }] },
      { name: 'notify', attributes: ci('step', 'notify') },
    ],
  });
  await h.flush();

  const pipeline = resourceNamed(h.intake, 'ci');
  const stage = resourceNamed(h.intake, 'build');
  const underStage = resourceNamed(h.intake, 'prepare');
  const underPipeline = resourceNamed(h.intake, 'notify');
  assert.equal(underStage.stage_id, stage.id);
  assert.equal(underStage.stage_name, 'build');
  assert.equal(underStage.pipeline_unique_id, pipeline.unique_id);
  assert.ok(!has(underStage, 'job_id') && !has(underStage, 'job_name'), JSON.stringify(underStage));
  assert.equal(underPipeline.pipeline_unique_id, pipeline.unique_id);
  assert.equal(underPipeline.pipeline_name, 'ci');
  for (const k of ['stage_id', 'stage_name', 'job_id', 'job_name']) assert.ok(!has(underPipeline, k), `${k} in ${JSON.stringify(underPipeline)}`);
  assertAllValid(h.intake);
});

test('two pipelines whose spans end alternately keep their own links (same child names in both)', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  // Span names are the test's handles; ci.name gives both pipelines the same child names on the wire.
  const named = (level: 'stage' | 'job' | 'step', p: string, name: string) => ci(level, `${p}-${name}`, { 'ci.name': name });
  const shape = (p: string): SpanSpec => ({
    name: p,
    attributes: ci('pipeline', p),
    children: [
      {
        name: `${p}:build`,
        attributes: named('stage', p, 'build'),
        children: [
          {
            name: `${p}:compile`,
            attributes: named('job', p, 'compile'),
            children: [
              { name: `${p}:javac`, attributes: named('step', p, 'javac') },
              { name: `${p}:jar`, attributes: named('step', p, 'jar') },
            ],
          },
        ],
      },
      { name: `${p}:lint`, attributes: named('job', p, 'lint') },
    ],
  });
  const a = openTree(h.tracer, shape('alpha'));
  const b = openTree(h.tracer, shape('beta'));
  endInterleaved(a, b);
  await h.flush();

  assert.equal(h.intake.events.length, 12);
  const mixed = h.exportCalls.filter((c) => c.names.some((n) => n.startsWith('alpha')) && c.names.some((n) => n.startsWith('beta')));
  assert.ok(mixed.length > 0, 'no export() call carried spans of both pipelines');
  for (const [p, tree] of [
    ['alpha', a],
    ['beta', b],
  ] as const) {
    const pipeline = resourceNamed(h.intake, p);
    assert.equal(pipeline.unique_id, uuidOfTrace(tree.spans.get(p)!.spanContext().traceId));
    const mine = h.intake.events.map((e) => e.attributes.resource).filter((r) => r.pipeline_unique_id === pipeline.unique_id);
    assert.deepEqual(mine.map((r) => r.name).sort(), ['build', 'compile', 'jar', 'javac', 'lint']);
    const stage = mine.find((r) => r.name === 'build')!;
    const compile = mine.find((r) => r.name === 'compile')!;
    assert.equal(stage.id, uuidOfSpan(tree.spans.get(`${p}:build`)!));
    for (const r of mine) assert.equal(r.pipeline_name, p);
    assert.equal(compile.stage_id, stage.id);
    for (const stepName of ['javac', 'jar']) {
      const step = mine.find((r) => r.name === stepName)!;
      assert.equal(step.job_id, compile.id);
      assert.equal(step.stage_id, stage.id);
    }
  }
  assertAllValid(h.intake);
});

test('exact pipeline_name / pipeline_unique_id / stage_* / job_* links at every level, as sent', async (t) => {
  const h = await startHarness(t, { batchSize: 3 });
  runTree(h.tracer, {
    name: 'pipeline-span',
    attributes: ci('pipeline', 'pipeline-span', { 'ci.name': 'Nightly' }),
    children: [
      {
        name: 'stage-span',
        attributes: ci('stage', 'stage-span', { 'ci.name': 'Build stage' }),
        children: [
          {
            name: 'job-span',
            attributes: ci('job', 'job-span', { 'ci.name': 'Compile job' }),
            children: [{ name: 'step-span', attributes: ci('step', 'step-span', { 'ci.name': 'javac step' }) }],
          },
          { name: 'stage-step', attributes: ci('step', 'stage-step') },
        ],
      },
      { name: 'loose-job', attributes: ci('job', 'loose-job'), children: [{ name: 'loose-step', attributes: ci('step', 'loose-step') }] },
    ],
  });
  await h.flush();

  const p = resourceNamed(h.intake, 'Nightly');
  const s = resourceNamed(h.intake, 'Build stage');
  const j = resourceNamed(h.intake, 'Compile job');
  const st = resourceNamed(h.intake, 'javac step');
  const ss = resourceNamed(h.intake, 'stage-step');
  const lj = resourceNamed(h.intake, 'loose-job');
  const ls = resourceNamed(h.intake, 'loose-step');
  assert.equal(h.intake.events.length, 7);
  for (const r of [s, j, st, ss, lj, ls]) {
    assert.equal(r.pipeline_unique_id, p.unique_id, r.name);
    assert.equal(r.pipeline_name, 'Nightly', r.name);
  }
  const pick = (r: Res, ...keys: string[]) => Object.fromEntries(keys.filter((k) => has(r, k)).map((k) => [k, r[k]]));
  const links = ['stage_id', 'stage_name', 'job_id', 'job_name'];
  assert.deepEqual(pick(j, ...links), { stage_id: s.id, stage_name: 'Build stage' });
  assert.deepEqual(pick(st, ...links), { stage_id: s.id, stage_name: 'Build stage', job_id: j.id, job_name: 'Compile job' });
  assert.deepEqual(pick(ss, ...links), { stage_id: s.id, stage_name: 'Build stage' });
  assert.deepEqual(pick(lj, ...links), {});
  assert.deepEqual(pick(ls, ...links), { job_id: lj.id, job_name: 'loose-job' });
  assertAllValid(h.intake);
});

test('derived IDs: pipeline = trace ID as UUID, others = trace prefix + span ID; the same on a second export', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const spans = runTree(h.tracer, classicBuild('ids'));
  await h.flush();

  const traceId = spans.get('ids')!.spanContext().traceId;
  const pipeline = resourceNamed(h.intake, 'ids');
  assert.equal(pipeline.unique_id, uuidOfTrace(traceId));
  assert.match(String(pipeline.unique_id), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  for (const n of ['ids/stage', 'ids/job', 'ids/step']) assert.equal(resourceNamed(h.intake, n).id, uuidOfSpan(spans.get(n)!), n);
  const ids = new Set(h.intake.events.map((e) => String(e.attributes.resource.id ?? e.attributes.resource.unique_id)));
  assert.equal(ids.size, 4);

  // The same spans again, all at once and parents first this time, through a fresh exporter.
  const again = await startIntake();
  t.after(() => again.close());
  const second = new DatadogCIPipelineExporter({ endpoint: again.endpoint, logger: () => undefined });
  const result = await exportDirect(second, [...h.ended].reverse());
  assert.equal(result.code, ExportResultCode.SUCCESS);
  await second.shutdown();
  const key = (r: Res) => JSON.stringify([r.name, r.unique_id, r.id, r.pipeline_unique_id, r.stage_id, r.job_id]);
  assert.deepEqual(again.events.map((e) => key(e.attributes.resource)).sort(), h.intake.events.map((e) => key(e.attributes.resource)).sort());
  assertAllValid(h.intake);
  assertAllValid(again);
});

test('explicit ci.unique_id (pipeline) and ci.id (job) win, and descendants link to them', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const P = '11111111-2222-4333-8444-555555555555';
  const J = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
  runTree(h.tracer, {
    name: 'explicit',
    attributes: ci('pipeline', 'explicit', { 'ci.unique_id': P }),
    children: [{ name: 'job', attributes: ci('job', 'job', { 'ci.id': J }), children: [{ name: 'step', attributes: ci('step', 'step') }] }],
  });
  await h.flush();
  assert.equal(resourceNamed(h.intake, 'explicit').unique_id, P);
  assert.equal(resourceNamed(h.intake, 'job').id, J);
  assert.equal(resourceNamed(h.intake, 'job').pipeline_unique_id, P);
  assert.equal(resourceNamed(h.intake, 'step').job_id, J);
  assert.equal(resourceNamed(h.intake, 'step').pipeline_unique_id, P);
  assertAllValid(h.intake);
});

test('more than 1000 events in one pipeline go out in several requests of at most 1000 events', async (t) => {
  const h = await startHarness(t, { batchSize: 3, maxQueueSize: 5000 });
  // 1 pipeline + 4 stages + 20 jobs + 1000 steps = 1025 events.
  const build: SpanSpec = {
    name: 'big',
    attributes: ci('pipeline', 'big'),
    children: Array.from({ length: 4 }, (_, s) => ({
      name: `s${s}`,
      attributes: ci('stage', `s${s}`),
      children: Array.from({ length: 5 }, (_, j) => ({
        name: `s${s}j${j}`,
        attributes: ci('job', `s${s}j${j}`),
        children: Array.from({ length: 50 }, (_, k) => ({ name: `s${s}j${j}k${k}`, attributes: ci('step', `s${s}j${j}k${k}`) })),
      })),
    })),
  };
  const spans = runTree(h.tracer, build);
  await h.flush();

  assert.equal(h.intake.events.length, 1025);
  const sizes = h.intake.requests.map((r) => r.events.length);
  assert.ok(sizes.length >= 2, `one request only: ${sizes.join(',')}`);
  assert.ok(
    sizes.every((n) => n <= 1000),
    `a request over 1000 events: ${sizes.join(',')}`,
  );
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    1025,
  );
  assert.equal(new Set(h.intake.events.map((e) => e.attributes.resource.name)).size, 1025);
  const unique = resourceNamed(h.intake, 'big').unique_id;
  for (const e of h.intake.events) if (e.attributes.resource.level !== 'pipeline') assert.equal(e.attributes.resource.pipeline_unique_id, unique);
  const step = resourceNamed(h.intake, 's3j4k49');
  assert.equal(step.job_id, uuidOfSpan(spans.get('s3j4')!));
  assert.equal(step.stage_id, uuidOfSpan(spans.get('s3')!));
  assertAllValid(h.intake);
});

// ---------------------------------------------------------------------------------------------
// Mapping of attributes, through real spans
// ---------------------------------------------------------------------------------------------

test('git set on the pipeline is inherited; a child naming another commit keeps only the repository and branch; a child tag drops the inherited branch', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const git = {
    'ci.git.repository_url': 'https://github.com/acme/app.git',
    'ci.git.sha': SHA,
    'ci.git.branch': 'main',
    'ci.git.author_email': 'dev@acme.example',
    'ci.git.message': 'fix the build',
  };
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', git),
    children: [
      {
        name: 'stage',
        attributes: ci('stage', 'stage'),
        children: [
          {
            name: 'override-job',
            attributes: ci('job', 'override-job', { 'ci.git.sha': SHA2, 'ci.git.author_email': 'other@acme.example' }),
            children: [{ name: 'override-step', attributes: ci('step', 'override-step') }],
          },
          {
            name: 'tag-job',
            attributes: ci('job', 'tag-job', { 'ci.git.tag': 'v1.2.3' }),
            children: [{ name: 'tag-step', attributes: ci('step', 'tag-step') }],
          },
        ],
      },
    ],
  });
  await h.flush();

  const base = { repository_url: 'https://github.com/acme/app.git', sha: SHA, branch: 'main', author_email: 'dev@acme.example', message: 'fix the build' };
  assert.deepEqual(resourceNamed(h.intake, 'p').git, base);
  assert.deepEqual(resourceNamed(h.intake, 'stage').git, base);
  // Another commit: the pipeline's author and message describe the pipeline's commit, not this one.
  const other = { repository_url: 'https://github.com/acme/app.git', sha: SHA2, branch: 'main', author_email: 'other@acme.example' };
  assert.deepEqual(resourceNamed(h.intake, 'override-job').git, other);
  // The nearest ancestor's git wins: the step under the overriding job gets the override.
  assert.deepEqual(resourceNamed(h.intake, 'override-step').git, other);
  const { branch: _branch, ...noBranch } = base;
  assert.deepEqual(resourceNamed(h.intake, 'tag-job').git, { ...noBranch, tag: 'v1.2.3' });
  assert.deepEqual(resourceNamed(h.intake, 'tag-step').git, { ...noBranch, tag: 'v1.2.3' });
  // Dropping the inherited branch is the rule, not a fix: nothing to warn about.
  assert.equal(h.lines.length, 0, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('resource ci.* attributes apply to every span; span attributes beat them', async (t) => {
  const h = await startHarness(t, {
    batchSize: 2,
    resource: {
      'ci.url': 'https://ci.example.com/run/7',
      'ci.tags': 'team:build,os:linux',
      'ci.node.name': 'runner-7',
      'ci.parameters.ARCH': 'arm64',
      'ci.git.repository_url': 'https://github.com/acme/app.git',
      'ci.git.sha': SHA,
      'ci.git.branch': 'main',
      'ci.git.author_email': 'dev@acme.example',
    },
  });
  runTree(h.tracer, {
    name: 'p',
    attributes: { 'ci.level': 'pipeline' },
    children: [
      {
        name: 's',
        attributes: { 'ci.level': 'stage' },
        children: [
          {
            name: 'j',
            attributes: { 'ci.level': 'job', 'ci.url': 'https://ci.example.com/run/7/job/1', 'ci.node.name': 'runner-9' },
            children: [{ name: 'st', attributes: { 'ci.level': 'step' } }],
          },
        ],
      },
    ],
  });
  await h.flush();

  assert.deepEqual(namesOf(h.intake), ['j', 'p', 's', 'st']);
  assert.equal(resourceNamed(h.intake, 'p').url, 'https://ci.example.com/run/7');
  assert.equal(resourceNamed(h.intake, 'j').url, 'https://ci.example.com/run/7/job/1');
  assert.equal(resourceNamed(h.intake, 'st').url, 'https://ci.example.com/run/7');
  for (const e of h.intake.events) {
    const r = e.attributes.resource;
    assert.deepEqual(r.tags, ['team:build', 'os:linux'], r.name);
    assert.equal((r.node as { name?: string }).name, r.name === 'j' ? 'runner-9' : 'runner-7', r.name);
    assert.deepEqual(r.parameters, { ARCH: 'arm64' }, r.name);
    assert.deepEqual(r.git, { repository_url: 'https://github.com/acme/app.git', sha: SHA, branch: 'main', author_email: 'dev@acme.example' }, r.name);
  }
  assertAllValid(h.intake);
});

test('ci.parameters.<key> become parameters, with values as strings; resource parameters merge in', async (t) => {
  const h = await startHarness(t, { batchSize: 2, resource: { 'ci.parameters.RUNNER': 'linux' } });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', { 'ci.parameters.DEPLOY': 'yes', 'ci.parameters.RETRIES': 3, 'ci.parameters.RUNNER': 'mac' }),
    children: [{ name: 'j', attributes: ci('job', 'j', { 'ci.parameters.TARGETS': ['a', 'b'] }) }],
  });
  await h.flush();
  assert.deepEqual(resourceNamed(h.intake, 'p').parameters, { DEPLOY: 'yes', RETRIES: '3', RUNNER: 'mac' });
  assert.deepEqual(resourceNamed(h.intake, 'j').parameters, { RUNNER: 'linux', TARGETS: 'a,b' });
  assertAllValid(h.intake);
});

test('ci.tags, ci.metrics and ci.node.labels are sent as given', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', { 'ci.metrics': ['duration_budget_s:600'] }),
    children: [
      {
        name: 'j',
        attributes: ci('job', 'j', {
          'ci.tags': ['team:ci', 'lang:ts', 'url:https://x.example/a:b'],
          'ci.metrics': ['memory_mb:512', 'retries:2', 'ratio:0.25'],
          'ci.node.labels': ['linux', 'x64', 'gpu'],
        }),
      },
    ],
  });
  await h.flush();
  const j = resourceNamed(h.intake, 'j');
  assert.deepEqual(j.tags, ['team:ci', 'lang:ts', 'url:https://x.example/a:b']);
  assert.deepEqual(j.metrics, ['memory_mb:512', 'retries:2', 'ratio:0.25']);
  assert.deepEqual((j.node as { labels?: string[] }).labels, ['linux', 'x64', 'gpu']);
  assert.deepEqual(resourceNamed(h.intake, 'p').metrics, ['duration_budget_s:600']);
  assert.equal(h.lines.length, 0, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('node.hostname comes from resource host.name; ci.node.hostname overrides it', async (t) => {
  const h = await startHarness(t, { batchSize: 2, resource: { 'host.name': 'builder-01.example.com' } });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'j', attributes: ci('job', 'j') },
      { name: 'remote', attributes: ci('job', 'remote', { 'ci.node.hostname': 'mac-mini.example.com' }) },
    ],
  });
  await h.flush();
  assert.equal((resourceNamed(h.intake, 'p').node as { hostname?: string }).hostname, 'builder-01.example.com');
  assert.equal((resourceNamed(h.intake, 'j').node as { hostname?: string }).hostname, 'builder-01.example.com');
  assert.equal((resourceNamed(h.intake, 'remote').node as { hostname?: string }).hostname, 'mac-mini.example.com');
  assertAllValid(h.intake);
});

test('env: the env option wins over resource deployment.environment.name, which is the fallback', async (t) => {
  const withOption = await startHarness(t, { exporter: { env: 'staging' }, resource: { 'deployment.environment.name': 'prod' } });
  runTree(withOption.tracer, classicBuild('opt'));
  await withOption.flush();
  const fromResource = await startHarness(t, { resource: { 'deployment.environment.name': 'prod' } });
  runTree(fromResource.tracer, classicBuild('res'));
  await fromResource.flush();
  const none = await startHarness(t);
  runTree(none.tracer, classicBuild('none'));
  await none.flush();

  assert.equal(withOption.intake.events.length, 4);
  for (const e of withOption.intake.events) assert.equal(e.attributes.env, 'staging');
  assert.equal(fromResource.intake.events.length, 4);
  for (const e of fromResource.intake.events) assert.equal(e.attributes.env, 'prod');
  assert.equal(none.intake.events.length, 4);
  for (const e of none.intake.events) assert.ok(!('env' in e.attributes), JSON.stringify(e.attributes));
  for (const h of [withOption, fromResource, none]) assertAllValid(h.intake);
});

test('provider_name defaults to "custom"; the providerName and service options apply to every event', async (t) => {
  const dflt = await startHarness(t);
  runTree(dflt.tracer, classicBuild('d'));
  await dflt.flush();
  const named = await startHarness(t, { exporter: { providerName: 'jenkins', service: 'jenkins-eu' } });
  runTree(named.tracer, classicBuild('n'));
  await named.flush();

  assert.equal(dflt.intake.events.length, 4);
  for (const e of dflt.intake.events) assert.equal(e.attributes.provider_name, 'custom');
  assert.equal(named.intake.events.length, 4);
  for (const e of named.intake.events) {
    assert.equal(e.attributes.provider_name, 'jenkins');
    assert.equal(e.attributes.service, 'jenkins-eu');
  }
  assertAllValid(dflt.intake);
  assertAllValid(named.intake);
});

test('start and end are RFC3339 with the span times\' sub-millisecond digits', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const t0 = Date.now() - 10_000;
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    startTime: hrTime(t0, 123_456),
    endTime: hrTime(t0 + 5_000, 987_654),
    children: [{ name: 'j', attributes: ci('job', 'j'), startTime: hrTime(t0 + 1, 4_321), endTime: hrTime(t0 + 2, 999) }],
  });
  await h.flush();
  const iso = (ms: number) => new Date(ms).toISOString().slice(0, 23);
  const p = resourceNamed(h.intake, 'p');
  const j = resourceNamed(h.intake, 'j');
  assert.equal(p.start, `${iso(t0)}123Z`);
  assert.equal(p.end, `${iso(t0 + 5_000)}987Z`);
  assert.equal(j.start, `${iso(t0 + 1)}004Z`);
  assert.equal(j.end, `${iso(t0 + 2)}000Z`);
  for (const r of [p, j]) for (const k of ['start', 'end']) assert.match(String(r[k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assertAllValid(h.intake);
});

// ---------------------------------------------------------------------------------------------
// Statuses and errors
// ---------------------------------------------------------------------------------------------

test('an error step with exception events: error from the first exception, status error; the job from its status message', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const boom = new TypeError('boom: cannot read x');
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      {
        name: 'unit tests',
        attributes: ci('job', 'unit tests'),
        status: { code: SpanStatusCode.ERROR, message: 'step "npm test" failed' },
        children: [
          {
            name: 'npm test',
            attributes: ci('step', 'npm test'),
            exceptions: [boom, new RangeError('second, ignored')],
            status: { code: SpanStatusCode.ERROR, message: 'exit code 1' },
          },
          { name: 'npm ci', attributes: ci('step', 'npm ci') },
        ],
      },
    ],
  });
  await h.flush();

  const step = resourceNamed(h.intake, 'npm test');
  assert.equal(step.status, 'error');
  assert.deepEqual(step.error, { type: 'TypeError', message: 'boom: cannot read x', stack: boom.stack });
  const job = resourceNamed(h.intake, 'unit tests');
  assert.equal(job.status, 'error');
  assert.deepEqual(job.error, { message: 'step "npm test" failed' });
  const ok = resourceNamed(h.intake, 'npm ci');
  assert.equal(ok.status, 'success');
  assert.ok(!has(ok, 'error'));
  assert.equal(resourceNamed(h.intake, 'p').status, 'success');
  assertAllValid(h.intake);
});

test('a canceled job (ci.status canceled) is sent as canceled, without a warning', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', { 'ci.status': 'canceled' }),
    children: [
      { name: 'deploy', attributes: ci('job', 'deploy', { 'ci.status': 'canceled' }), children: [{ name: 'wait', attributes: ci('step', 'wait') }] },
    ],
  });
  await h.flush();
  assert.equal(resourceNamed(h.intake, 'deploy').status, 'canceled');
  assert.equal(resourceNamed(h.intake, 'p').status, 'canceled');
  assert.equal(resourceNamed(h.intake, 'wait').status, 'success');
  assert.equal(h.lines.length, 0, h.lines.join('\n'));
  assert.equal(h.exporter.getCounters().eventsFixed, 0);
  assertAllValid(h.intake);
});

test(
  'a failure given as a ci.status synonym ("failed") still takes its error from the exception event',
  async (t) => {
    const h = await startHarness(t, { batchSize: 2 });
    runTree(h.tracer, {
      name: 'p',
      attributes: ci('pipeline', 'p'),
      children: [
        { name: 'canonical', attributes: ci('job', 'canonical', { 'ci.status': 'error' }), exceptions: [new SyntaxError('bad yaml')] },
        { name: 'synonym', attributes: ci('job', 'synonym', { 'ci.status': 'failed' }), exceptions: [new SyntaxError('bad yaml')] },
      ],
    });
    await h.flush();
    const canonical = resourceNamed(h.intake, 'canonical').error as Record<string, string>;
    assert.equal(canonical.type, 'SyntaxError');
    assert.equal(canonical.message, 'bad yaml');
    const synonym = resourceNamed(h.intake, 'synonym');
    assert.equal(synonym.status, 'error');
    // Two Error objects made on different lines: their stacks differ, their type and message not.
    const { stack: _a, ...canonicalRest } = canonical;
    const { stack: synonymStack, ...synonymRest } = synonym.error as Record<string, string>;
    assert.deepEqual(synonymRest, canonicalRest);
    assert.match(synonymStack ?? '', /^SyntaxError: bad yaml/);
    assertAllValid(h.intake);
  },
);

test(
  'a stage or step with ci.status "running" is sent as a valid finished event',
  async (t) => {
    const h = await startHarness(t, { batchSize: 2 });
    runTree(h.tracer, {
      name: 'p',
      attributes: ci('pipeline', 'p'),
      children: [{ name: 's', attributes: ci('stage', 's', { 'ci.status': 'running' }), children: [{ name: 'st', attributes: ci('step', 'st', { 'ci.status': 'running' }) }] }],
    });
    await h.flush().catch(() => undefined);
    assertAllValid(h.intake);
    assert.deepEqual(namesOf(h.intake), ['p', 's', 'st']);
    for (const n of ['s', 'st']) assert.ok(typeof resourceNamed(h.intake, n).end === 'string', n);
  },
);

// ---------------------------------------------------------------------------------------------
// Bad inputs: fixed and warned once, or dropped with one clear message; the rest goes on
// ---------------------------------------------------------------------------------------------

test('a pipeline without ci.url is dropped with one message (span, field, attribute); its children are still sent', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const spans = runTree(h.tracer, {
    name: 'no-url',
    attributes: { 'ci.level': 'pipeline' },
    children: [
      {
        name: 'stage',
        attributes: ci('stage', 'stage'),
        children: [{ name: 'job', attributes: ci('job', 'job'), children: [{ name: 'step', attributes: ci('step', 'step') }] }],
      },
    ],
  });
  await h.flush();

  assert.deepEqual(namesOf(h.intake), ['job', 'stage', 'step']);
  const traceId = spans.get('no-url')!.spanContext().traceId;
  for (const e of h.intake.events) {
    assert.equal(e.attributes.resource.pipeline_unique_id, uuidOfTrace(traceId));
    assert.equal(e.attributes.resource.pipeline_name, 'no-url');
  }
  const about = linesWith(h.lines, 'no-url', '"url"', 'ci.url');
  assert.equal(about.length, 1, h.lines.join('\n'));
  assert.ok(about[0]!.includes(traceId), about[0]);
  assert.ok(about[0]!.includes('pipeline'), about[0]);
  assert.equal(h.exporter.getCounters().dropped.invalid, 1);
  assertAllValid(h.intake);
});

test('a job without ci.url is dropped (one message for many); its steps and siblings are still sent', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'j1', attributes: { 'ci.level': 'job' }, children: [{ name: 'j1-step', attributes: ci('step', 'j1-step') }] },
      { name: 'j2', attributes: { 'ci.level': 'job' } },
      { name: 'j3', attributes: ci('job', 'j3') },
    ],
  });
  await h.flush();
  assert.deepEqual(namesOf(h.intake), ['j1-step', 'j3', 'p']);
  assert.equal(resourceNamed(h.intake, 'j1-step').job_name, 'j1');
  assert.equal(linesWith(h.lines, '"url"', 'ci.url').length, 1, h.lines.join('\n'));
  assert.equal(h.exporter.getCounters().dropped.invalid, 2);
  assertAllValid(h.intake);
});

test('an unknown ci.level value: one warning, the span is skipped, its children link through it', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      {
        name: 'matrix',
        attributes: { 'ci.level': 'task' },
        children: [
          { name: 'j', attributes: ci('job', 'j'), children: [{ name: 'st', attributes: ci('step', 'st') }] },
          { name: 'matrix-2', attributes: { 'ci.level': 'task' }, children: [{ name: 'j2', attributes: ci('job', 'j2') }] },
        ],
      },
    ],
  });
  await h.flush();
  assert.deepEqual(namesOf(h.intake), ['j', 'j2', 'p', 'st']);
  const p = resourceNamed(h.intake, 'p');
  assert.equal(resourceNamed(h.intake, 'j').pipeline_unique_id, p.unique_id);
  assert.equal(resourceNamed(h.intake, 'j2').pipeline_unique_id, p.unique_id);
  assert.equal(resourceNamed(h.intake, 'st').job_id, resourceNamed(h.intake, 'j').id);
  const warned = linesWith(h.lines, 'task');
  assert.equal(warned.length, 1, h.lines.join('\n'));
  assert.ok(warned[0]!.includes('ci.level'), warned[0]);
  assert.equal(h.exporter.getCounters().dropped.unknown_level, 2);
  assertAllValid(h.intake);
});

test('a bad tag is left out and warned about once for many spans', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: Array.from({ length: 5 }, (_, i) => ({ name: `j${i}`, attributes: ci('job', `j${i}`, { 'ci.tags': ['team:ci', 'no-colon', 'empty:'] }) })),
  });
  await h.flush();
  assert.equal(h.intake.events.length, 6);
  for (let i = 0; i < 5; i++) assert.deepEqual(resourceNamed(h.intake, `j${i}`).tags, ['team:ci']);
  const warned = linesWith(h.lines, 'ci.tags');
  assert.equal(warned.length, 1, h.lines.join('\n'));
  assert.ok(warned[0]!.includes('no-colon'), warned[0]);
  assert.equal(h.exporter.getCounters().eventsFixed, 5);
  assertAllValid(h.intake);
});

test('an attribute of the wrong type is named with the span that carries it, once; the event goes on without it', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'j1', attributes: ci('job', 'j1', { 'ci.queue_time': 'soon' }) },
      { name: 'j2', attributes: ci('job', 'j2', { 'ci.queue_time': 'later' }) },
    ],
  });
  await h.flush();
  assert.equal(h.intake.events.length, 3);
  assert.equal(resourceNamed(h.intake, 'j1').queue_time, undefined);
  const warned = linesWith(h.lines, 'ci.queue_time');
  assert.equal(warned.length, 1, h.lines.join('\n'));
  // Whichever resolved first, the message names the span whose value it quotes.
  const m = /^job "(j[12])" \(trace [0-9a-f]{32}, span [0-9a-f]{16}\): attribute ci\.queue_time expects a non-negative integer.*got "(\w+)"/.exec(warned[0]!);
  assert.ok(m, warned[0]);
  assert.equal(m[2], m[1] === 'j1' ? 'soon' : 'later', warned[0]);
  assertAllValid(h.intake);
});

test('tag and branch both set: the tag is kept, warned once for many spans', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const git = {
    'ci.git.repository_url': 'https://github.com/acme/app.git',
    'ci.git.sha': SHA,
    'ci.git.author_email': 'dev@acme.example',
    'ci.git.branch': 'main',
    'ci.git.tag': 'v2.0.0',
  };
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: Array.from({ length: 3 }, (_, i) => ({ name: `j${i}`, attributes: ci('job', `j${i}`, git) })),
  });
  await h.flush();
  for (let i = 0; i < 3; i++) {
    const g = resourceNamed(h.intake, `j${i}`).git as Record<string, string>;
    assert.equal(g.tag, 'v2.0.0');
    assert.ok(!('branch' in g), JSON.stringify(g));
  }
  assert.equal(linesWith(h.lines, 'ci.git.tag', 'ci.git.branch').length, 1, h.lines.join('\n'));
  assert.equal(h.lines.length, 1, h.lines.join('\n'));
  assert.equal(h.exporter.getCounters().eventsFixed, 3);
  assertAllValid(h.intake);
});

test('git on the resource, fixed or left out: every span gets the same verdict and counts as fixed, one message per kind', async (t) => {
  // The resource's git is one object for all its spans (mapping/transform.ts) and is checked
  // once (validate.ts): each event that carries it must still read as it would alone.
  const git = {
    'ci.git.repository_url': 'https://github.com/acme/app.git',
    'ci.git.sha': SHA,
    'ci.git.author_email': 'dev@acme.example',
    'ci.git.branch': 'main',
    'ci.git.tag': 'v2.0.0',
    'ci.git.commit_time': '2024-01-02 03:04:05Z',
  };
  const tree = {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: Array.from({ length: 3 }, (_, i) => ({ name: `j${i}`, attributes: ci('job', `j${i}`), children: [{ name: `s${i}`, attributes: ci('step', `s${i}`) }] })),
  };
  const fixed = await startHarness(t, { batchSize: 3, resource: git });
  runTree(fixed.tracer, tree);
  await fixed.flush();
  assert.equal(fixed.intake.events.length, 7);
  for (const name of ['p', 'j0', 'j1', 'j2', 's0', 's1', 's2']) {
    assert.deepEqual(resourceNamed(fixed.intake, name).git, {
      repository_url: 'https://github.com/acme/app.git',
      sha: SHA,
      author_email: 'dev@acme.example',
      tag: 'v2.0.0',
      commit_time: '2024-01-02T03:04:05.000Z',
    });
  }
  assert.equal(linesWith(fixed.lines, 'ci.git.tag', 'ci.git.branch').length, 1, fixed.lines.join('\n'));
  assert.equal(linesWith(fixed.lines, 'ci.git.commit_time').length, 1, fixed.lines.join('\n'));
  assert.equal(fixed.exporter.getCounters().eventsFixed, 7);
  assertAllValid(fixed.intake);

  const { 'ci.git.author_email': _, ...noEmail } = git;
  const unsendable = await startHarness(t, { batchSize: 3, resource: noEmail });
  runTree(unsendable.tracer, tree);
  await unsendable.flush();
  assert.equal(unsendable.intake.events.length, 7);
  for (const name of ['p', 'j0', 's0', 's2']) assert.equal(resourceNamed(unsendable.intake, name).git, undefined, name);
  assert.equal(linesWith(unsendable.lines, 'ci.git.author_email').length, 1, unsendable.lines.join('\n'));
  assert.equal(unsendable.exporter.getCounters().eventsFixed, 7);
  assertAllValid(unsendable.intake);
});

test('a step with ci.status "canceled" is sent as error, with a warning', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [{ name: 'j', attributes: ci('job', 'j'), children: [1, 2].map((i) => ({ name: `st${i}`, attributes: ci('step', `st${i}`, { 'ci.status': 'canceled' }) })) }],
  });
  await h.flush();
  assert.equal(resourceNamed(h.intake, 'st1').status, 'error');
  assert.equal(resourceNamed(h.intake, 'st2').status, 'error');
  const warned = linesWith(h.lines, 'canceled', 'step');
  assert.equal(warned.length, 1, h.lines.join('\n'));
  assert.ok(warned[0]!.includes('error'), warned[0]);
  assertAllValid(h.intake);
});

test('an over-long error message is truncated to 5000 characters, warned once', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      {
        name: 'j',
        attributes: ci('job', 'j', { 'ci.error.message': 'y'.repeat(7000) }),
        status: { code: SpanStatusCode.ERROR },
        children: [
          { name: 'st', attributes: ci('step', 'st'), exceptions: [new Error('x'.repeat(6000))], status: { code: SpanStatusCode.ERROR } },
        ],
      },
    ],
  });
  await h.flush();
  const msg = (n: string) => String((resourceNamed(h.intake, n).error as { message?: string }).message);
  assert.equal(msg('st').length, 5000);
  assert.ok(msg('st').startsWith('x'.repeat(4900)));
  assert.equal(msg('j').length, 5000);
  assert.equal(linesWith(h.lines, '5000').length, 1, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('attributes of the wrong type are warned about once per attribute and ignored', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p', { 'ci.is_manual': 'perhaps' }),
    children: [
      { name: 'j1', attributes: ci('job', 'j1', { 'ci.queue_time': 'abc' }) },
      { name: 'j2', attributes: ci('job', 'j2', { 'ci.queue_time': 'abc' }) },
      { name: 'j3', attributes: ci('job', 'j3', { 'ci.queue_time': 250, 'ci.node.labels': 42 as unknown as string[] }) },
    ],
  });
  await h.flush();
  assert.equal(h.intake.events.length, 4);
  assert.ok(!has(resourceNamed(h.intake, 'j1'), 'queue_time'));
  assert.ok(!has(resourceNamed(h.intake, 'j2'), 'queue_time'));
  assert.equal(resourceNamed(h.intake, 'j3').queue_time, 250);
  assert.ok(!has(resourceNamed(h.intake, 'j3'), 'node'));
  assert.ok(!has(resourceNamed(h.intake, 'p'), 'is_manual'));
  const queue = linesWith(h.lines, 'ci.queue_time');
  assert.equal(queue.length, 1, h.lines.join('\n'));
  assert.ok(queue[0]!.includes('"abc"'), queue[0]);
  assert.equal(linesWith(h.lines, 'ci.is_manual', 'perhaps').length, 1, h.lines.join('\n'));
  assert.equal(linesWith(h.lines, 'ci.node.labels').length, 1, h.lines.join('\n'));
  assert.equal(h.lines.length, 3, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('events that ended more than 18 hours ago are dropped as too old, with a message; fresh ones are sent', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const old = Date.now() - 20 * HOUR;
  runTree(h.tracer, {
    name: 'old-build',
    attributes: ci('pipeline', 'old-build'),
    startTime: old,
    endTime: old + 60_000,
    children: [{ name: 'old-job', attributes: ci('job', 'old-job'), startTime: old + 1_000, endTime: old + 2_000 }],
  });
  runTree(h.tracer, classicBuild('fresh'));
  await h.flush();

  assert.deepEqual(namesOf(h.intake), ['fresh', 'fresh/job', 'fresh/stage', 'fresh/step']);
  const c = h.exporter.getCounters();
  assert.ok(c.dropped.too_old >= 1, JSON.stringify(c.dropped));
  // The old job may be dropped while waiting for its (old) pipeline, or with it: either way once.
  assert.equal(c.dropped.too_old + c.dropped.pending_expired, 2, JSON.stringify(c.dropped));
  const about = linesWith(h.lines, 'old-build', '18 hours');
  assert.equal(about.length, 1, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('a span whose ci.start is outside the Date range does not stop the rest of the export() batch', async (t) => {
  const h = await startHarness(t, { batchSize: 10 });
  // A build tool that reports nanoseconds where milliseconds are expected.
  runTree(h.tracer, {
    name: 'ns',
    attributes: ci('pipeline', 'ns', { 'ci.start': Date.now() * 1e6 }),
    children: [{ name: 'ns/job', attributes: ci('job', 'ns/job') }],
  });
  runTree(h.tracer, classicBuild('after'));
  await h.flush();
  await h.close();
  assert.deepEqual(namesOf(h.intake).filter((n) => n.startsWith('after')), ['after', 'after/job', 'after/stage', 'after/step']);
  // The job under the bad pipeline is either sent or counted as dropped, never silently lost.
  const c = h.exporter.getCounters();
  const dropped = Object.values(c.dropped).reduce((a, b) => a + b, 0);
  assert.equal(h.intake.events.length + dropped, 6, JSON.stringify(c));
  assertAllValid(h.intake);
});

// ---------------------------------------------------------------------------------------------
// Configuration errors, secrets, lifecycle
// ---------------------------------------------------------------------------------------------

test('an unknown site: one clear line through the logger, export() reports FAILED, nothing thrown', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const lines: string[] = [];
  let exporter: DatadogCIPipelineExporter | undefined;
  assert.doesNotThrow(() => {
    exporter = new DatadogCIPipelineExporter({ site: 'datadoghq.moon', apiKey: 'abc', logger: (l) => lines.push(l) });
  });
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /datadoghq\.moon/);
  assert.match(lines[0]!, /datadoghq\.eu/); // says what would be right
  const spans = await recordTree(classicBuild('x'));
  const result = await exportDirect(exporter!, spans);
  assert.equal(result.code, ExportResultCode.FAILED);
  await exporter!.forceFlush();
  await exporter!.shutdown();
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.equal(exporter!.getCounters().dropped.not_configured, spans.length);
  assert.equal(intake.requests.length, 0);
  assertAllValid(intake);
});

test('no API key and no endpoint: one clear line naming DD_API_KEY, export() reports FAILED, nothing thrown', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({ logger: (l) => lines.push(l) });
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, /DD_API_KEY/);
  assert.match(lines[0]!, /apiKey/);
  const result = await exportDirect(exporter, await recordTree(classicBuild('x')));
  assert.equal(result.code, ExportResultCode.FAILED);
  await exporter.shutdown();
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.equal(intake.requests.length, 0);
  assertAllValid(intake);
});

test('a bad option in a real provider does not throw into the build', async (t) => {
  const h = await startHarness(t, { exporter: { endpoint: undefined, site: 'nowhere.example', apiKey: 'abc' } });
  assert.doesNotThrow(() => runTree(h.tracer, classicBuild('x')));
  // The SDK turns a FAILED export into a rejected flush; the exporter itself must not throw.
  await h.provider.forceFlush().catch(() => undefined);
  await h.close();
  assert.equal(linesWith(h.lines, 'nowhere.example').length, 1, h.lines.join('\n'));
  assert.ok(h.exportCalls.length > 0 && h.exportCalls.every((c) => c.result?.code === ExportResultCode.FAILED));
  assert.equal(h.intake.requests.length, 0);
  assertAllValid(h.intake);
});

test('no logged line ever contains the API key, whatever goes wrong', async (t) => {
  const KEY = 'SECRET-KEY-123';
  const lines: string[] = [];
  const logger = (l: string) => lines.push(l);
  const fast = { retry: { initialDelayMs: 5, maxDelayMs: 10, deadlineMs: 150 }, requestTimeoutMs: 500, logger, apiKey: KEY };
  const spans = await recordTree({
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'no-url-job', attributes: { 'ci.level': 'job' } },
      { name: 'j', attributes: ci('job', 'j', { 'ci.tags': ['bad'], 'ci.queue_time': 'abc' }) },
    ],
  });

  // Every faulty setup below makes the exporter print something; none of it may carry the key.
  new DatadogCIPipelineExporter({ ...fast, site: 'datadoghq.moon' });
  new DatadogCIPipelineExporter({ ...fast, endpoint: 'ftp://example.com/' });
  const seen: string[] = [];
  for (const status of [403, 400, 500, 413]) {
    const intake = await startIntake({
      respond: (req) => {
        seen.push(String(req.headers['dd-api-key']));
        return { status, body: { errors: [{ status: String(status), title: 'Refused', detail: `refused (${status})` }] } };
      },
    });
    t.after(() => intake.close());
    const exporter = new DatadogCIPipelineExporter({ ...fast, endpoint: intake.endpoint });
    await exportDirect(exporter, spans);
    await exporter.shutdown();
    assertAllValid(intake);
  }
  // Connection refused: the network error text is logged too.
  const gone = await startIntake();
  const endpoint = gone.endpoint;
  await gone.close();
  const unreachable = new DatadogCIPipelineExporter({ ...fast, endpoint });
  await exportDirect(unreachable, spans);
  await unreachable.shutdown();

  assert.ok(seen.length >= 4 && seen.every((k) => k === KEY), 'the key was not sent in DD-API-KEY');
  assert.ok(lines.length >= 8, `too few messages to mean anything:\n${lines.join('\n')}`);
  assert.deepEqual(
    lines.filter((l) => l.includes(KEY)),
    [],
  );
});

test('a server answer that echoes the API key back is not logged verbatim', async (t) => {
  const KEY = 'SECRET-KEY-123';
  const lines: string[] = [];
  // A proxy that repeats the request headers in its error bodies, whatever the status.
  for (const status of [400, 413, 404, 500]) {
    const intake = await startIntake({
      respond: (req) => ({ status, body: { errors: [{ detail: `invalid header DD-API-KEY: ${String(req.headers['dd-api-key'])}` }] } }),
    });
    t.after(() => intake.close());
    const exporter = new DatadogCIPipelineExporter({
      endpoint: intake.endpoint,
      apiKey: KEY,
      logger: (l) => lines.push(l),
      retry: { initialDelayMs: 5, maxDelayMs: 10, deadlineMs: 100 },
    });
    await exportDirect(exporter, await recordTree(classicBuild(`echo-${status}`)));
    await exporter.shutdown();
    assert.ok(intake.requests.length > 0);
    assertAllValid(intake);
  }
  assert.ok(linesWith(lines, 'invalid header DD-API-KEY').length > 0, `the server text is not in the messages at all:\n${lines.join('\n')}`);
  assert.deepEqual(
    lines.filter((l) => l.includes(KEY)),
    [],
  );
});

test('export() after shutdown() reports FAILED and sends nothing', async (t) => {
  const h = await startHarness(t);
  runTree(h.tracer, classicBuild('before'));
  await h.flush();
  assert.equal(h.intake.events.length, 4);
  await h.exporter.shutdown();
  const requests = h.intake.requests.length;
  const after = await recordTree(classicBuild('after'));
  assert.equal((await exportDirect(h.exporter, after)).code, ExportResultCode.FAILED);
  // Spans that would only be held (no event to send yet) are refused just the same.
  const heldOnly = after.filter((s) => s.name === 'after/step');
  assert.equal((await exportDirect(h.exporter, heldOnly)).code, ExportResultCode.FAILED);
  assert.equal(h.exporter.getCounters().pending, 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.intake.events.length, 4);
  assert.equal(h.intake.requests.length, requests);
  assertAllValid(h.intake);
});

test('forceFlush() resolves only after the intake has accepted the events', async (t) => {
  const intake = await startIntake({ respond: () => ({ delayMs: 300 }) });
  t.after(() => intake.close());
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined });
  t.after(() => exporter.shutdown());
  let reported: number | undefined;
  exporter.export(await recordTree(classicBuild('slow')), (r) => (reported = r.code));
  assert.equal(intake.acceptedCount(), 0);
  const started = Date.now();
  await exporter.forceFlush();
  assert.equal(intake.acceptedCount(), 4, `forceFlush returned after ${Date.now() - started} ms with nothing accepted`);
  assert.deepEqual(namesOf(intake), ['slow', 'slow/job', 'slow/stage', 'slow/step']);
  await new Promise((r) => setImmediate(r));
  assert.equal(reported, ExportResultCode.SUCCESS);
  assertAllValid(intake);
});

test('export() only files its spans: resolving them and encoding their body each happen in a later turn of the event loop', async (t) => {
  // Filing, resolving and encoding were one synchronous stretch (up to ~20 ms per export() call
  // on a busy machine): the host's event loop now gets a turn between each of them.
  const intake = await startIntake();
  t.after(() => intake.close());
  const exporter = new DatadogCIPipelineExporter({ endpoint: intake.endpoint, logger: () => undefined, detectEnvironment: false });
  t.after(() => exporter.shutdown());
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  let reported: number | undefined;
  exporter.export(await recordTree(classicBuild('turns')), (r) => (reported = r.code));
  const c = exporter.getCounters();
  assert.deepEqual([c.spansReceived, c.eventsReady, c.queued], [4, 0, 0], 'export() resolved or sent something itself');
  await turn();
  assert.deepEqual([exporter.getCounters().eventsReady, exporter.getCounters().queued], [4, 0], 'resolved and encoded in one turn');
  await turn();
  assert.equal(exporter.getCounters().queued, 4, 'the body was not handed to delivery in the turn after the last slice');
  await exporter.forceFlush();
  assert.equal(reported, ExportResultCode.SUCCESS);
  assert.deepEqual(namesOf(intake), ['turns', 'turns/job', 'turns/stage', 'turns/step']);
  assertAllValid(intake);
});

test('shutdown() emits what is still held: children of a pipeline that never ended are reported, not lost', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  const tree = openTree(h.tracer, classicBuild('unfinished'));
  // Everything ends but the pipeline span.
  for (const { span, spec } of tree.endOrder.slice(0, -1)) span.end(spec.endTime);
  await h.flush();
  assert.equal(h.intake.events.length, 0);
  assert.equal(h.exporter.getCounters().pending, 3);
  await h.close();
  const c = h.exporter.getCounters();
  assert.equal(c.pending, 0);
  assert.equal(c.dropped.orphaned, 3, JSON.stringify(c.dropped));
  // One message for the three, naming the first and the missing link.
  const about = linesWith(h.lines, 'unfinished/stage', 'pipeline_unique_id');
  assert.equal(about.length, 1, h.lines.join('\n'));
  assertAllValid(h.intake);
});

test('getCounters() adds up: received spans, events sent, drops by reason', async (t) => {
  const h = await startHarness(t, { batchSize: 2 });
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [{ name: 'http', children: [{ name: 'j', attributes: ci('job', 'j') }] }, { name: 'bad', attributes: { 'ci.level': 'job' } }],
  });
  await h.flush();
  const c = h.exporter.getCounters();
  assert.equal(c.spansReceived, 4);
  assert.equal(c.eventsReady, 2);
  assert.equal(c.eventsSent, 2);
  assert.equal(c.dropped.invalid, 1);
  assert.equal(c.pending, 0);
  assert.equal(h.intake.events.length, 2);
  assertAllValid(h.intake);
});
