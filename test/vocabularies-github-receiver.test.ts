// The collector's githubreceiver → pipeline events: jobs arrive before their run, each batch
// with its own resource.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GH_RUN_NAME, GH_RUN_URL, GH_SHA, ghTraceId, githubReceiverRun } from './fixtures/vocabularies/github-receiver.js';
import { iso, runProducer } from './fixtures/vocabularies/harness.js';

for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV']) delete process.env[k];

const uuidOf = (traceId: string): string => `${traceId.slice(0, 8)}-${traceId.slice(8, 12)}-${traceId.slice(12, 16)}-${traceId.slice(16, 20)}-${traceId.slice(20)}`;

test('github receiver: jobs before their run, a retried run, queue spans, a skipped and a canceled step, a canceled job', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const r = await runProducer(t, githubReceiverRun(t0));
  assert.deepEqual(
    r.intake.events.map((e) => `${e.attributes.resource.level}:${e.attributes.resource.name}`).sort(),
    ['job:build', 'job:deploy', 'pipeline:build-and-test', 'step:Deploy', 'step:Run tests', 'step:Set up job', 'step:Set up job', 'step:Upload coverage'],
    'queue spans make no event',
  );
  const p = r.one('pipeline', GH_RUN_NAME);
  assert.equal(r.event('pipeline', GH_RUN_NAME).attributes.provider_name, 'github');
  assert.equal(p.unique_id, uuidOf(ghTraceId('9753949763', 2)));
  assert.equal(p.url, GH_RUN_URL);
  assert.equal(p.status, 'error');
  assert.equal(p.pipeline_id, '9753949763');
  assert.deepEqual(p.previous_attempt, { id: uuidOf(ghTraceId('9753949763', 1)), url: `${GH_RUN_URL}/attempts/1` }, 'the previous attempt: its pipeline unique_id');
  assert.deepEqual(p.git, { repository_url: 'https://github.com/acme/api', sha: GH_SHA, author_email: 'noreply@github.com', branch: 'feature/rate-limit', author_name: 'GitHub' });
  assert.equal(p.start, iso(t0));
  assert.equal(p.end, iso(t0 + 61_000));

  const build = r.one('job', 'build');
  assert.equal(build.status, 'error');
  assert.equal(build.url, `${GH_RUN_URL}/job/26920038674`);
  assert.equal(build.pipeline_unique_id, p.unique_id);
  assert.equal(build.pipeline_name, GH_RUN_NAME, 'not the job batch resource cicd.pipeline.name (the job name)');
  assert.equal(build.queue_time, 12_000);
  assert.equal(build.start, new Date(t0 + 12_000).toISOString(), 'the job starts when it left the queue');
  assert.equal(build.end, iso(t0 + 60_000));
  assert.deepEqual(build.node, { name: 'GitHub Actions 320', labels: ['ubuntu-latest'] });
  assert.deepEqual(build.git, p.git, 'the pipeline git is inherited');
  const deploy = r.one('job', 'deploy');
  assert.equal(deploy.status, 'canceled');
  assert.equal(deploy.queue_time, 3000);

  const steps = r.intake.events.map((e) => e.attributes.resource).filter((x) => x.level === 'step');
  for (const s of steps) {
    assert.equal(s.pipeline_unique_id, p.unique_id);
    assert.equal(s.job_id, s.name === 'Deploy' || s.start === iso(t0 + 3000) ? deploy.id : build.id);
  }
  const skipped = r.one('step', 'Upload coverage');
  assert.equal(skipped.status, 'success', 'a skipped step (written failure, status UNSET) is sent as success');
  assert.deepEqual(skipped.tags, ['ci.step.result:skipped']);
  assert.equal(r.one('step', 'Run tests').status, 'error');
  const canceled = r.one('step', 'Deploy');
  assert.equal(canceled.status, 'error');
  assert.deepEqual(canceled.tags, ['ci.step.result:canceled']);
  assert.equal(canceled.job_name, 'deploy');
  assert.equal(r.lines.filter((l) => /not sent|dropped/.test(l)).length, 0, r.lines.join('\n'));
});

test('github receiver: the same run with the run webhook first, and each batch split over several export() calls', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const [build, deploy, run] = githubReceiverRun(t0, 1);
  const r = await runProducer(t, [run!, build!, deploy!].map((b) => ({ ...b, exportBatchSize: 2 })));
  const p = r.one('pipeline', GH_RUN_NAME);
  assert.equal(p.previous_attempt, undefined, 'attempt 1 links to nothing');
  assert.equal(r.intake.events.length, 8);
  for (const e of r.intake.events) if (e.attributes.resource.level !== 'pipeline') assert.equal(e.attributes.resource.pipeline_unique_id, p.unique_id);
  // The queue span ends before its job: it is in the job's batch, whatever the split.
  assert.equal(r.one('job', 'build').queue_time, 12_000);
  assert.equal(r.one('step', 'Upload coverage').job_name, 'build');
});

test('github receiver: job batches whose run never arrives are reported at shutdown (one line per kind), queue spans are not', async (t) => {
  const t0 = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
  const [build, deploy] = githubReceiverRun(t0, 1);
  const r = await runProducer(t, [build!, deploy!]);
  assert.equal(r.intake.events.length, 0, 'held: waiting for their run');
  assert.equal(r.exporter.getCounters().pending, 9, 'every span of the job batches, queue spans included, waits');
  await r.exporter.shutdown();
  const c = r.exporter.getCounters();
  assert.equal(c.pending, 0);
  const dropped = Object.values(c.dropped).reduce((a, b) => a + b, 0);
  assert.equal(dropped, 7, '2 jobs + 5 steps; the 2 queue spans were never events');
  assert.ok(r.lines.some((l) => /job "(build|deploy)" .*not sent: field "pipeline_unique_id" is required/.test(l)), r.lines.join('\n'));
  assert.equal(c.dropped.orphaned, 7);
});
