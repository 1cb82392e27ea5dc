// Jenkins OpenTelemetry plugin traces → pipeline events, through the exporter into the intake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jenkinsBuild, JENKINS_RUN_URL } from './fixtures/vocabularies/jenkins.js';
import { iso, runProducer } from './fixtures/vocabularies/harness.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

test('jenkins: build → pipeline, Stage: → stages, atomic steps → jobs; phases, agents, branches pass through', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const r = await runProducer(t, [jenkinsBuild(t0)]);
  const events = r.intake.events.map((e) => `${e.attributes.resource.level}:${e.attributes.resource.name}`).sort();
  assert.deepEqual(events, [
    'job:Shell Script',
    'job:Shell Script',
    'job:Shell Script',
    'job:Shell Script',
    'job:Shell Script',
    'job:checkout: github.com/acme/app',
    'pipeline:acme/app',
    'stage:build',
    'stage:deploy',
    'stage:retry',
    'stage:test',
  ]);
  const root = 'BUILD acme/app/feature%2Fx';
  const run = `${root}/Phase: Run/Agent`;
  const p = r.one('pipeline', 'acme/app');
  assert.equal(r.event('pipeline', 'acme/app').attributes.provider_name, 'jenkins');
  assert.equal(p.unique_id, r.traceUuid(root));
  assert.equal(p.url, JENKINS_RUN_URL);
  assert.equal(p.status, 'error');
  assert.equal(p.pipeline_id, 'jenkins-acme-app-feature%2Fx-42');
  assert.equal(p.is_manual, true);
  assert.deepEqual(p.parameters, { ENV: 'prod' }, 'sensitive parameters are left out');
  assert.deepEqual(p.error, { type: 'PIPELINE_FAILURE' });
  assert.equal(p.git, undefined, 'no commit SHA from the plugin: no git object');
  assert.deepEqual(p.tags, ['git.branch:feature/x'], 'multibranch: the branch is a tag, the pipeline is named after the parent job');
  assert.equal(p.start, iso(t0));
  assert.equal(p.end, iso(t0 + 100_000));

  const link = { pipeline_unique_id: p.unique_id, pipeline_name: 'acme/app' };
  const build = r.one('stage', 'build');
  assert.deepEqual(
    { id: build.id, status: build.status, queue_time: build.queue_time, ...link },
    { id: r.uuid(`${run}/Stage: build`), status: 'success', queue_time: 5000, ...link },
    'Agent Allocation time is the queue time of what the agent block runs first',
  );
  assert.deepEqual([build.pipeline_unique_id, build.pipeline_name], [link.pipeline_unique_id, link.pipeline_name]);
  assert.equal(r.one('stage', 'test').status, 'error');
  assert.equal(r.one('stage', 'test').queue_time, undefined);
  assert.equal(r.one('stage', 'deploy').status, 'skipped', 'NOT_EXECUTED stage');
  assert.equal(r.one('stage', 'retry').status, 'success');

  const checkout = r.one('job', 'checkout: github.com/acme/app');
  assert.equal(checkout.url, `${JENKINS_RUN_URL}execution/node/8/`);
  assert.equal(checkout.stage_id, build.id);
  assert.equal(checkout.stage_name, 'build');
  assert.equal(checkout.pipeline_unique_id, p.unique_id);
  assert.deepEqual(checkout.node, { name: 'agent-7', hostname: 'agent-7.example', labels: ['linux', 'docker'] });
  assert.equal(checkout.start, iso(t0 + 6000));
  assert.equal(checkout.end, iso(t0 + 9000));

  const shells = r.all('job', 'Shell Script');
  const byNode = new Map(shells.map((s) => [String(s.url).replace(/.*node\/(\d+)\/$/, '$1'), s]));
  const test = r.one('stage', 'test');
  const unit = byNode.get('20')!;
  assert.equal(unit.status, 'error');
  assert.equal(unit.stage_id, test.id, 'a job in a parallel branch links to the enclosing stage');
  assert.ok((unit.tags as string[]).includes('jenkins.parallel_branch:unit'));
  assert.deepEqual((unit.error as Record<string, unknown>).type, 'hudson.AbortException');
  const lint = byNode.get('21')!;
  assert.equal(lint.status, 'canceled', 'fail-fast: the other branch is aborted (span status UNSET), sent as canceled');
  assert.ok((lint.tags as string[]).includes('jenkins.parallel_branch:lint'));
  assert.ok((lint.tags as string[]).includes('jenkins.interruption:FailFastCause'));
  const retry = r.one('stage', 'retry');
  assert.deepEqual([byNode.get('31')!.status, byNode.get('32')!.status], ['error', 'success'], 'a retried step: both attempts are jobs');
  assert.equal(byNode.get('31')!.stage_id, retry.id);
  assert.equal(byNode.get('9')!.stage_id, build.id);
  assert.ok(!(byNode.get('9')!.tags as string[] | undefined)?.some((x) => x.startsWith('jenkins.parallel_branch')));
  for (const s of shells) assert.equal(s.pipeline_unique_id, p.unique_id);
});

test('jenkins: spans exported two at a time (children before parents, across export() calls) give the same events', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const r = await runProducer(t, [{ ...jenkinsBuild(t0), exportBatchSize: 2 }]);
  assert.equal(r.intake.events.length, 11);
  assert.equal(r.one('stage', 'build').queue_time, 5000);
  const lint = r.all('job', 'Shell Script').find((s) => String(s.url).endsWith('/node/21/'))!;
  assert.deepEqual([lint.status, lint.stage_name], ['canceled', 'test']);
});
