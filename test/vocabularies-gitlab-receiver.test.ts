// The collector's gitlabreceiver → pipeline / stage / job events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GL_SHA, GL_URL, gitlabPipeline } from './fixtures/vocabularies/gitlab-receiver.js';
import { iso, runProducer } from './fixtures/vocabularies/harness.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

test('gitlab receiver: unnamed pipeline named after the project, stages under the root, stage status from its jobs', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const r = await runProducer(t, [gitlabPipeline(t0)]);
  assert.deepEqual(
    r.intake.events.map((e) => `${e.attributes.resource.level}:${e.attributes.resource.name}`).sort(),
    ['job:compile', 'job:e2e', 'job:lint', 'job:release', 'job:unit', 'job:unit', 'pipeline:acme/app', 'stage:build', 'stage:deploy', 'stage:test'],
  );
  const root = 'Fix the flaky test';
  const p = r.one('pipeline', 'acme/app');
  assert.equal(r.event('pipeline', 'acme/app').attributes.provider_name, 'gitlab');
  assert.equal(p.unique_id, r.traceUuid(root));
  assert.equal(p.url, GL_URL);
  assert.equal(p.status, 'error');
  assert.equal(p.pipeline_id, '1042');
  assert.deepEqual(p.git, {
    repository_url: 'https://gitlab.example.com/acme/app',
    sha: GL_SHA,
    author_email: 'ada@example.com',
    branch: 'main',
    author_name: 'Ada',
    commit_time: '2026-11-30T10:00:00.000Z',
    message: 'Fix the flaky test',
  });
  assert.deepEqual(p.tags, ['gitlab.pipeline.source:push']);
  assert.equal(p.start, iso(t0));
  assert.equal(p.end, iso(t0 + 120_000));

  const build = r.one('stage', 'build');
  const test = r.one('stage', 'test');
  const deploy = r.one('stage', 'deploy');
  assert.deepEqual([build.status, test.status, deploy.status], ['success', 'canceled', 'skipped'], 'retried unit counts by its last attempt, lint may fail, e2e was canceled');
  assert.equal(test.id, r.uuid(`${root}/test`));
  for (const s of [build, test, deploy]) assert.deepEqual([s.pipeline_unique_id, s.pipeline_name], [p.unique_id, 'acme/app']);

  const [unit1, unit2] = r.all('job', 'unit').sort((a, b) => String(a.start).localeCompare(String(b.start)));
  assert.equal(unit1!.status, 'error');
  assert.deepEqual(unit1!.error, { type: 'script_failure', domain: 'user', message: 'failed' });
  assert.equal(unit2!.status, 'success');
  const e2e = r.one('job', 'e2e');
  assert.equal(e2e.status, 'canceled', 'the result attribute wins over the ERROR span status');
  assert.equal(e2e.stage_id, test.id);
  assert.equal(e2e.stage_name, 'test');
  assert.equal(e2e.queue_time, 2500);
  assert.match(String(e2e.url), /^https:\/\/gitlab\.example\.com\/acme\/app\/-\/jobs\/\d+$/);
  assert.deepEqual(e2e.node, { name: 'shared-runner-12', labels: ['docker', 'linux'] });
  assert.equal(e2e.start, iso(t0 + 31_000));
  assert.deepEqual(r.one('job', 'lint').tags, ['gitlab.job.allow_failure:true']);
  assert.equal(r.one('job', 'release').status, 'skipped');
  assert.equal(r.one('job', 'compile').stage_id, build.id);
});
