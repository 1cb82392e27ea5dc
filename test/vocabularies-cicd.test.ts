// OpenTelemetry CICD semantic conventions, and the GitHub Actions exporters (which add github.*
// keys to them), through the exporter into the intake; spans that mix vocabularies or carry
// this project's own ci.* keys too; the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { CICD_SHA, CICD_URL, cicdRun } from './fixtures/vocabularies/cicd.js';
import { exportTraceActionRun, GA_RUN, GA_SHA, otelCicdActionRun } from './fixtures/vocabularies/github-actions.js';
import { jenkinsBuild } from './fixtures/vocabularies/jenkins.js';
import { iso, runProducer } from './fixtures/vocabularies/harness.js';
import { hex, type Batch } from './fixtures/vocabularies/producer.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const recent = (): number => Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
const names = (r: { intake: { events: Array<{ attributes: { resource: { level: string; name: string } } }> } }): string[] =>
  r.intake.events.map((e) => `${e.attributes.resource.level}:${e.attributes.resource.name}`).sort();

test('cicd semconv: pipeline-run span, tasks → jobs, tasks in tasks → steps, a non-task span passes lineage through', async (t) => {
  const t0 = recent();
  const r = await runProducer(t, [cicdRun(t0)]);
  assert.deepEqual(names(r), ['job:deploy', 'job:lint', 'job:test', 'pipeline:nightly', 'step:gofmt', 'step:golangci-lint', 'step:integration', 'step:unit']);
  const p = r.one('pipeline', 'nightly');
  assert.equal(p.unique_id, r.traceUuid('BUILD nightly'));
  assert.equal(p.url, CICD_URL);
  assert.equal(p.status, 'error');
  assert.equal(p.pipeline_id, '120912');
  assert.deepEqual(p.error, { type: 'test_failure', domain: 'user', message: 'exit status 1' });
  assert.equal(p.git, undefined, 'semconv has no author e-mail: git goes to tags');
  assert.deepEqual(p.tags, ['cicd.pipeline.action.name:BUILD', 'git.repository_url:https://github.com/acme/app', `git.commit.sha:${CICD_SHA}`, 'git.tag:v1.4.0']);
  assert.deepEqual(p.node, { hostname: 'ci-controller-1' });
  const lint = r.one('job', 'lint');
  assert.equal(lint.pipeline_unique_id, p.unique_id, 'through the non-task span');
  assert.equal(lint.url, `${CICD_URL}/tasks/1`);
  assert.equal(lint.status, 'success');
  assert.deepEqual(lint.tags, ['cicd.pipeline.task.type:test']);
  assert.deepEqual(lint.node, { name: 'agent-abc', hostname: 'ci-controller-1' });
  const gofmt = r.one('step', 'gofmt');
  assert.deepEqual([gofmt.status, gofmt.tags, gofmt.job_id, gofmt.job_name], ['success', ['ci.step.result:skipped'], lint.id, 'lint']);
  const test = r.one('job', 'test');
  assert.equal(test.status, 'error');
  assert.deepEqual(test.error, { type: 'test_failure', domain: 'user', message: '3 tests failed' });
  const integration = r.one('step', 'integration');
  assert.deepEqual([integration.status, integration.tags, integration.job_id], ['error', ['ci.step.result:canceled'], test.id]);
  assert.equal(r.one('step', 'unit').status, 'error');
  assert.equal(r.one('job', 'deploy').status, 'canceled');
  assert.equal(r.one('job', 'deploy').start, iso(t0 + 200_000));
});

test('github actions exporters: Queued → pipeline queue time, jobs, steps, a canceled job, a retried run; the older exporter too', async (t) => {
  const t0 = recent();
  const r = await runProducer(t, [otelCicdActionRun(t0), exportTraceActionRun(t0)]);
  assert.deepEqual(names(r), ['job:build', 'job:lint', 'job:only', 'job:test', 'pipeline:CI', 'pipeline:Legacy CI', 'step:Build', 'step:Lint', 'step:Run', 'step:Set up job', 'step:Set up job', 'step:Test']);
  const p = r.one('pipeline', 'CI');
  assert.equal(r.event('pipeline', 'CI').attributes.provider_name, 'github');
  assert.equal(p.url, GA_RUN);
  assert.equal(p.status, 'error');
  assert.equal(p.pipeline_id, '555');
  assert.equal(p.queue_time, 8000);
  assert.equal(p.start, new Date(t0 + 8000).toISOString(), 'the run starts when it left the queue');
  assert.equal(p.is_manual, true);
  assert.deepEqual(p.git, { repository_url: 'https://github.com/acme/web', sha: GA_SHA, author_email: 'grace@example.com', branch: 'main', author_name: 'Grace', author_time: '2026-11-30T09:00:00.000Z', message: 'Ship it' });
  assert.ok((p.tags as string[]).includes('github.previous_attempt_url:https://github.com/acme/web/actions/runs/555/attempts/1'));
  assert.ok((p.tags as string[]).includes('github.run_attempt:2'));
  assert.equal(p.previous_attempt, undefined, 'its event UUID is unknowable from these exporters');
  const lint = r.one('job', 'lint');
  assert.equal(lint.status, 'canceled', 'the result wins over the OK span status');
  assert.equal(lint.url, `${GA_RUN}/job/903`);
  assert.deepEqual(lint.node, { name: 'GitHub Actions 2', labels: ['ubuntu-latest', 'x64'] });
  const lintStep = r.one('step', 'Lint');
  assert.deepEqual([lintStep.status, lintStep.tags, lintStep.job_id], ['error', ['ci.step.result:canceled', 'github.job.step.number:1'], lint.id]);
  assert.equal(r.one('job', 'test').status, 'error');
  assert.equal(r.one('step', 'Test').status, 'error');
  assert.equal(r.one('job', 'build').pipeline_unique_id, p.unique_id);

  const old = r.one('pipeline', 'Legacy CI');
  assert.equal(old.status, 'success');
  assert.equal(old.queue_time, 2000);
  assert.deepEqual(old.git, { repository_url: 'https://github.com/acme/old', sha: GA_SHA, author_email: 'old@example.com' }, 'the e-mail in the name field is not a name');
  const only = r.one('job', 'only');
  assert.equal(only.url, 'https://github.com/acme/old/actions/runs/9/job/42', 'no job URL: built from the run URL');
  assert.equal(only.pipeline_unique_id, old.unique_id);
  assert.equal(r.one('step', 'Run').job_id, only.id);
});

test('mixing: the first vocabulary in the registry decides; the span\'s own ci.* keys win over any vocabulary', async (t) => {
  const t0 = recent();
  const batch: Batch = {
    resource: { 'service.name': 'mixed' },
    traceId: hex('mixed', 32),
    spans: [
      {
        name: 'BUILD mixed',
        start: t0,
        end: t0 + 10_000,
        attributes: { 'cicd.pipeline.result': 'success', 'cicd.pipeline.name': 'mixed', 'cicd.pipeline.run.url.full': 'https://ci.example/mixed/1', 'ci.name': 'contract-name', 'git.commit.sha': CICD_SHA },
        children: [
          // Jenkins step keys and semconv task keys on one span: Jenkins comes first (a job; URL from its run URL, none here).
          { name: 'both', start: t0 + 1000, end: t0 + 2000, attributes: { 'jenkins.pipeline.step.type': 'sh', 'jenkins.pipeline.step.id': '5', 'jenkins.pipeline.step.result': 'FAILURE', 'cicd.pipeline.task.name': 'semconv-name', 'cicd.pipeline.task.run.result': 'success' } },
          // A task with contract keys: the vocabulary decides the level, the contract's values win.
          { name: 'task', start: t0 + 2000, end: t0 + 3000, attributes: { 'cicd.pipeline.task.name': 'vocab-name', 'cicd.pipeline.task.run.result': 'failure', 'cicd.pipeline.task.run.url.full': 'https://ci.example/t', 'ci.status': 'success', 'ci.url': 'https://contract.example/t' } },
          // ci.level: the contract's span; the vocabulary is not consulted (Datadog's tag names still fill gaps).
          { name: 'labelled', start: t0 + 3000, end: t0 + 4000, attributes: { 'ci.level': 'job', 'cicd.pipeline.task.name': 'ignored', 'ci.job.url': 'https://dd.example/job' } },
        ],
      },
    ],
  };
  const r = await runProducer(t, [batch]);
  assert.deepEqual(names(r), ['job:both', 'job:labelled', 'job:vocab-name', 'pipeline:contract-name']);
  const p = r.one('pipeline', 'contract-name');
  assert.equal(p.url, 'https://ci.example/mixed/1');
  assert.ok((p.tags as string[]).includes(`git.commit.sha:${CICD_SHA}`), 'Datadog\'s git.commit.sha, alone, is kept as a tag');
  assert.equal(r.one('job', 'both').status, 'error', 'Jenkins\' result, not the semconv one');
  const task = r.one('job', 'vocab-name');
  assert.deepEqual([task.status, task.url], ['success', 'https://contract.example/t']);
  const labelled = r.one('job', 'labelled');
  assert.equal(labelled.url, 'https://dd.example/job');
  assert.equal(labelled.pipeline_unique_id, p.unique_id);
});

test('option vocabularies: false turns them off, a list selects, a bad value is a configuration error', async (t) => {
  const t0 = recent();
  const off = await runProducer(t, [jenkinsBuild(t0), cicdRun(t0)], { vocabularies: false });
  assert.equal(off.intake.events.length, 0);
  const some = await runProducer(t, [jenkinsBuild(t0), cicdRun(t0)], { vocabularies: ['cicd'] });
  assert.deepEqual([...new Set(names(some).map((n) => n.split(':')[0]))].sort(), ['job', 'pipeline', 'step']);
  assert.ok(names(some).includes('pipeline:nightly'));
  assert.ok(!names(some).includes('pipeline:acme/app'));
  const { DatadogCIPipelineExporter } = await import('../src/index.js');
  const lines: string[] = [];
  const bad = new DatadogCIPipelineExporter({ apiKey: 'k', vocabularies: ['jenkins', 'travis'] as never, logger: (l) => lines.push(l) });
  assert.match(lines.join('\n'), /option vocabularies names unknown vocabularies \["travis"\]/);
  await bad.shutdown();
  void SpanStatusCode;
});
