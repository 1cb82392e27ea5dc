// Each vocabulary module on plain objects: recognisers, decisions that depend on ancestors and
// children, the status table, git's complete-or-tags rule, the registry's generic parts (queue
// time handed down, branch tags, Datadog's tag names), the option.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { EMPTY_LINEAGE, type Lineage } from '../src/mapping/transform.js';
import { putGit, putStatus, resultStatus, rfc3339 } from '../src/vocabularies/common.js';
import { cicd, nameWithoutAction } from '../src/vocabularies/cicd.js';
import { datadogFallback } from '../src/vocabularies/datadog.js';
import { githubReceiver } from '../src/vocabularies/github-receiver.js';
import { repositoryFromRunUrl } from '../src/vocabularies/common.js';
import { gitlabReceiver, stageStatusFromJobs } from '../src/vocabularies/gitlab-receiver.js';
import { htmlUrl } from '../src/vocabularies/github-actions.js';
import { buildTag, jenkins, pipelineName } from '../src/vocabularies/jenkins.js';
import { resolveVocabularies, VocabularyRegistry, VOCABULARY_NAMES, type VocabSpan } from '../src/vocabularies/index.js';

let n = 0;
function span(o: { name?: string; attributes?: Attributes; resource?: Attributes; parent?: string; start?: number; end?: number; status?: SpanStatusCode; spanId?: string }): VocabSpan {
  const spanId = o.spanId ?? (++n).toString(16).padStart(16, '0');
  return {
    name: o.name ?? 'span',
    spanContext: () => ({ traceId: 'a'.repeat(32), spanId }),
    parentSpanContext: o.parent ? { spanId: o.parent } : undefined,
    startTime: [o.start ?? 100, 0],
    endTime: [o.end ?? 110, 0],
    status: { code: o.status ?? SpanStatusCode.UNSET },
    attributes: o.attributes ?? {},
    events: [],
    resource: { attributes: o.resource ?? {} },
  };
}
const SHA = '0123456789abcdef0123456789abcdef01234567';
const pipelineLineage: Lineage = { pipeline: { unique_id: 'u', name: 'p' } };

test('status table: every producer\'s words; unknown words are left to the span status', () => {
  const cases: Array<[string, string | undefined]> = [
    ['success', 'success'], ['neutral', 'success'], ['SUCCESS', 'success'],
    ['failure', 'error'], ['error', 'error'], ['timeout', 'error'], ['timed_out', 'error'], ['startup_failure', 'error'], ['action_required', 'error'], ['failed', 'error'], ['FAILURE', 'error'], ['UNSTABLE', 'error'],
    ['cancellation', 'canceled'], ['cancelled', 'canceled'], ['canceled', 'canceled'], ['ABORTED', 'canceled'],
    ['skip', 'skipped'], ['skipped', 'skipped'], ['NOT_BUILT', 'skipped'], ['NOT_EXECUTED', 'skipped'],
    ['PAUSED_PENDING_INPUT', undefined], ['manual', undefined],
  ];
  for (const [raw, want] of cases) assert.equal(resultStatus(raw), want, raw);
  const out: Record<string, unknown> = {};
  const tags: string[] = [];
  putStatus(out as never, tags, 'step', 'canceled');
  assert.deepEqual([out['ci.status'], tags], ['error', ['ci.step.result:canceled']]);
  putStatus(out as never, tags, 'job', 'canceled');
  assert.equal(out['ci.status'], 'canceled');
});

test('git: complete → ci.git.*, anything less → tags under Datadog\'s names; a tag wins over a branch', () => {
  const full: Record<string, unknown> = {};
  const t1: string[] = [];
  putGit(full as never, t1, { repository_url: 'https://x/r', sha: SHA.toUpperCase(), author_email: 'a@x', branch: 'main', commit_time: '2026-11-30 10:00:00 UTC' });
  assert.deepEqual(full, { 'ci.git.repository_url': 'https://x/r', 'ci.git.sha': SHA, 'ci.git.author_email': 'a@x', 'ci.git.branch': 'main', 'ci.git.commit_time': '2026-11-30T10:00:00.000Z' });
  assert.deepEqual(t1, []);
  const part: Record<string, unknown> = {};
  const t2: string[] = [];
  putGit(part as never, t2, { repository_url: 'https://x/r', sha: 'abc123', author_email: 'a@x', branch: 'b', tag: 'v1' });
  assert.deepEqual(part, {});
  assert.deepEqual(t2, ['git.repository_url:https://x/r', 'git.commit.sha:abc123', 'git.tag:v1']);
  assert.equal(rfc3339('not a time'), undefined);
});

test('cicd: a task is a job, a task under a job a step (decided from the lineage); a pipeline-run span; other spans pass through', () => {
  const task = span({ attributes: { 'cicd.pipeline.task.name': 't', 'cicd.pipeline.task.run.result': 'skip' }, parent: 'p' });
  assert.ok(cicd.recognise(task));
  assert.equal(cicd.decide(task, pipelineLineage, () => []).level, 'job');
  const asStep = cicd.decide(task, { ...pipelineLineage, job: { id: 'j', name: 'j' } }, () => []);
  assert.deepEqual(asStep, { level: 'step', values: { 'ci.name': 't', 'ci.status': 'success', 'ci.tags': ['ci.step.result:skipped'] } });
  const root = span({ name: 'RUN nightly', resource: { 'cicd.pipeline.run.id': '7' } });
  assert.ok(cicd.recognise(root));
  const d = cicd.decide(root, EMPTY_LINEAGE, () => []);
  assert.equal(d.level, 'pipeline');
  assert.equal(d.values?.['ci.name'], 'nightly');
  assert.equal(d.values?.['ci.pipeline_id'], '7');
  assert.equal(cicd.recognise(span({ resource: { 'cicd.pipeline.run.id': '7' }, parent: 'x' })), false, 'resource identity alone makes only the root a pipeline');
  assert.equal(cicd.recognise(span({ name: 'GET /health', resource: { 'cicd.pipeline.run.id': '7' } })), false, 'a program run by CI, its resource naming the run: its roots are no pipelines');
  assert.equal(cicd.recognise(span({ name: 'RUNNER', resource: { 'cicd.pipeline.run.id': '7' } })), false);
  assert.equal(cicd.recognise(span({ name: 'SYNC', resource: { 'cicd.pipeline.name': 'x' } })), true);
  assert.equal(nameWithoutAction('SYNC  x'), 'SYNC  x');
});

test('github receiver: recognised by resource keys; skipped steps; queue child → job queue time and start; derived repository URL', () => {
  const jobRes = { 'cicd.pipeline.run.task.status': 'success', 'cicd.pipeline.task.run.url.full': 'https://github.com/o/r/actions/runs/1/job/2' };
  const skipped = span({ resource: jobRes, parent: 'j', attributes: { 'cicd.pipeline.task.name': 's', 'cicd.pipeline.run.task.status': 'failure' } });
  assert.ok(githubReceiver.recognise(skipped));
  assert.equal(githubReceiver.decide(skipped, pipelineLineage, () => []).values?.['ci.status'], 'success');
  const failed = span({ resource: jobRes, parent: 'j', status: SpanStatusCode.ERROR, attributes: { 'cicd.pipeline.task.name': 's', 'cicd.pipeline.run.task.status': 'failure' } });
  assert.equal(githubReceiver.decide(failed, pipelineLineage, () => []).values?.['ci.status'], 'error');
  const job = span({ name: 'build', resource: jobRes, parent: 'root', start: 100, end: 200 });
  const queue = span({ name: 'queue-build', resource: jobRes, parent: job.spanContext().spanId, start: 100, end: 130, attributes: { 'cicd.pipeline.run.queue.duration': 30e9 } });
  assert.deepEqual(githubReceiver.decide(queue, pipelineLineage, () => []), {});
  const d = githubReceiver.decide(job, pipelineLineage, () => [queue]);
  assert.deepEqual([d.level, d.values?.['ci.queue_time'], d.values?.['ci.start']], ['job', 30_000, 130_000]);
  assert.equal(githubReceiver.decide(job, pipelineLineage, () => []).values?.['ci.queue_time'], undefined, 'no queue span arrived: no queue time');
  assert.equal(repositoryFromRunUrl('https://ghe.example/o/r/actions/runs/1'), 'https://ghe.example/o/r');
  assert.equal(githubReceiver.recognise(span({ resource: { 'vcs.provider.name': 'github' } })), false);
});

test('gitlab receiver: root, stage (any other child), job; stage status from the latest attempt of each job', () => {
  const res = { 'vcs.provider.name': 'gitlab', 'cicd.pipeline.run.url.full': 'https://gl/p/1', 'service.name': 'g/p', 'cicd.pipeline.name': '', 'cicd.pipeline.result': 'success' };
  assert.ok(gitlabReceiver.recognise(span({ resource: res })));
  assert.equal(gitlabReceiver.recognise(span({ resource: { ...res, 'cicd.pipeline.result': undefined } as Attributes })), false, 'a program inside a GitLab job: no result on its resource');
  assert.equal(gitlabReceiver.decide(span({ resource: res }), EMPTY_LINEAGE, () => []).values?.['ci.name'], 'g/p');
  const job = (name: string, result: string, start: number, extra: Attributes = {}) => span({ resource: res, parent: 's', start, attributes: { 'cicd.pipeline.task.name': name, 'cicd.pipeline.task.run.result': result, ...extra } });
  assert.equal(stageStatusFromJobs([job('a', 'failed', 1), job('a', 'success', 2)]), 'success');
  assert.equal(stageStatusFromJobs([job('a', 'success', 2), job('a', 'failed', 1)]), 'success', 'order of arrival does not matter');
  assert.equal(stageStatusFromJobs([job('a', 'failed', 1, { 'gitlab.job.allow_failure': true }), job('b', 'skipped', 1)]), 'success');
  assert.equal(stageStatusFromJobs([job('a', 'canceled', 1), job('b', 'failed', 1)]), 'error');
  assert.equal(stageStatusFromJobs([job('a', 'skipped', 1)]), 'skipped');
  assert.equal(stageStatusFromJobs([]), undefined);
  const stage = span({ resource: res, parent: 'root', status: SpanStatusCode.ERROR });
  assert.deepEqual(gitlabReceiver.decide(stage, pipelineLineage, () => []), { level: 'stage', values: { 'ci.status': 'error' } }, 'no jobs known: the span status');
});

test('jenkins: names, build tag, levels by step type; agents hand their allocation time to what they run first', () => {
  assert.deepEqual(pipelineName('org/app/PR-12', 'multibranch'), { name: 'org/app', branch: 'PR-12' });
  assert.deepEqual(pipelineName('org/app', 'workflow'), { name: 'org/app' });
  assert.equal(buildTag('org/app/main', '3'), 'jenkins-org-app-main-3');
  const ctx: Lineage = { ...pipelineLineage, vocab: { vocabulary: 'jenkins', runUrl: 'https://j/job/a/1' } };
  const sh = span({ name: 'Shell Script', attributes: { 'jenkins.pipeline.step.type': 'sh', 'jenkins.pipeline.step.id': '9', 'jenkins.pipeline.step.result': 'NOT_EXECUTED' } });
  const d = jenkins.decide(sh, ctx, () => []);
  assert.deepEqual([d.level, d.values?.['ci.url'], d.values?.['ci.status']], ['job', 'https://j/job/a/1/execution/node/9/', 'skipped']);
  const agent = span({ name: 'Agent', attributes: { 'jenkins.pipeline.step.type': 'node', 'jenkins.pipeline.step.agent.label': 'linux || arm64' } });
  const alloc = span({ name: 'Agent Allocation', start: 10, end: 13, attributes: { 'jenkins.pipeline.step.type': 'node', 'jenkins.pipeline.step.name': 'agent.allocate' } });
  const later = span({ name: 'Stage: b', start: 20 });
  const first = span({ name: 'Stage: a', start: 14 });
  const a = jenkins.decide(agent, ctx, () => [alloc, later, first]);
  assert.equal(a.level, undefined);
  assert.deepEqual(a.context, { vocabulary: 'jenkins', runUrl: 'https://j/job/a/1', labels: ['linux', 'arm64'], queue: { spanId: first.spanContext().spanId, ms: 3000 } });
  assert.equal(jenkins.recognise(span({ name: 'Phase: Run' })), false);
});

test('registry: queue time goes to its target (or on to the first child of a target that is no event); branch tags on everything below', () => {
  const reg = new VocabularyRegistry(VOCABULARY_NAMES);
  const agentChild = span({ name: 'Parallel branch: x', start: 5, attributes: { 'jenkins.pipeline.step.type': 'parallel', 'jenkins.pipeline.step.name': 'x' } });
  const inner = span({ name: 'Shell Script', start: 6, attributes: { 'jenkins.pipeline.step.type': 'sh' } });
  const lineage: Lineage = { ...pipelineLineage, vocab: { vocabulary: 'jenkins', queue: { spanId: agentChild.spanContext().spanId, ms: 1234 } } };
  const branch = reg.resolve(agentChild, lineage, () => [inner]);
  assert.equal(branch.level, undefined);
  assert.deepEqual(branch.context, { vocabulary: 'jenkins', tags: ['jenkins.parallel_branch:x'], queue: { spanId: inner.spanContext().spanId, ms: 1234 } });
  const job = reg.resolve(inner, { ...lineage, vocab: branch.context! }, () => []);
  assert.equal(job.values?.['ci.queue_time'], 1234);
  assert.deepEqual(job.values?.['ci.tags'], ['jenkins.parallel_branch:x']);
  assert.equal(job.context?.queue, undefined, 'consumed: not given again below');
  const sibling = reg.resolve(span({ name: 'Shell Script', attributes: { 'jenkins.pipeline.step.type': 'sh' } }), { ...lineage, vocab: branch.context! }, () => []);
  assert.equal(sibling.values?.['ci.queue_time'], undefined);
  assert.equal(new VocabularyRegistry(['cicd']).recognise(inner), false);
  assert.equal(reg.levelIfEvicted(span({ name: 'Agent', attributes: { 'jenkins.pipeline.step.type': 'node' } })), undefined, 'a pass-through span is not reported when evicted');
});

test('datadog tag names: a fallback by level; git complete or tags', () => {
  assert.deepEqual(datadogFallback({ 'ci.pipeline.url': 'https://u', 'ci.job.url': 'https://j', 'ci.node.labels': '["a","b"]' }, 'pipeline'), { values: { 'ci.url': 'https://u', 'ci.node.labels': ['a', 'b'] }, tags: [] });
  assert.deepEqual(datadogFallback({ 'ci.job.url': 'https://j' }, 'job'), { values: { 'ci.url': 'https://j' }, tags: [] });
  assert.deepEqual(datadogFallback({ 'git.repository_url': 'r', 'git.commit.sha': SHA, 'git.commit.author.email': 'e', 'git.branch': 'b' }, 'step')?.values, { 'ci.git.repository_url': 'r', 'ci.git.sha': SHA, 'ci.git.author_email': 'e', 'ci.git.branch': 'b' });
  assert.equal(datadogFallback({ 'http.method': 'GET' }, 'job'), undefined);
  assert.equal(htmlUrl('https://api.github.com/repos/o/r/actions/runs/1/attempts/1'), 'https://github.com/o/r/actions/runs/1/attempts/1');
});

test('option: true/undefined = all, false = none, a list selects, anything else says what to write', () => {
  assert.deepEqual(resolveVocabularies(undefined), { names: VOCABULARY_NAMES });
  assert.deepEqual(resolveVocabularies(false), { names: [] });
  assert.deepEqual(resolveVocabularies(['jenkins', 'jenkins']), { names: ['jenkins'] });
  assert.match((resolveVocabularies('jenkins') as { problem: string }).problem, /must be true \(all\), false \(none\) or a list of github-receiver, gitlab-receiver, jenkins/);
});

test('a configuration built without the option (another layer resolving options) means all vocabularies; an empty list none', async () => {
  const { EventBuilder } = await import('../src/events.js');
  const { Diagnostics } = await import('../src/diagnostics.js');
  const { resolveOptions } = await import('../src/options.js');
  const r = resolveOptions({ endpoint: 'http://127.0.0.1:9/x', apiKey: 'k' });
  assert.ok(r.ok);
  const { vocabularies, ...without } = r.options;
  assert.deepEqual(vocabularies, VOCABULARY_NAMES);
  const jenkinsStep = { ...span({ attributes: { 'jenkins.pipeline.step.type': 'sh' } }), kind: 0, duration: [0, 0], ended: true, instrumentationScope: { name: 'x' }, links: [], droppedAttributesCount: 0, droppedEventsCount: 0, droppedLinksCount: 0 };
  assert.equal(new EventBuilder(without, new Diagnostics(() => {})).levelOf(jenkinsStep as never), 'vocab');
  assert.equal(new EventBuilder({ ...without, vocabularies: [] }, new Diagnostics(() => {})).levelOf(jenkinsStep as never), undefined);
});

test('resultStatus: words as producers write them, any case and spacing; words that are no result (Object.prototype\'s names included) give none', () => {
  assert.equal(resultStatus('SUCCESS'), 'success');
  assert.equal(resultStatus('Failure'), 'error');
  assert.equal(resultStatus('  aborted '), 'canceled');
  assert.equal(resultStatus('NOT_BUILT'), 'skipped');
  for (const word of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'CONSTRUCTOR', 'whatever', '']) assert.equal(resultStatus(word), undefined, word);
});
