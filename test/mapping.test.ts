// The mapping as pure functions on plain objects: attributes → fields, span → resource, IDs,
// times, and the validator's fixes and drops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { readCiAttributes, type CiAttributes } from '../src/mapping/attributes.js';
import { mapSpan, mergeGit, EMPTY_LINEAGE, type Lineage, type SpanData } from '../src/mapping/transform.js';
import { spanIdToUuid, traceIdToUuid } from '../src/mapping/ids.js';
import { hrTimeToRfc3339 } from '../src/mapping/time.js';
import { validateEvent } from '../src/validation/validate.js';
import type { FieldSpec, Level } from '../src/mapping/fields.js';
import { PendingStore } from '../src/hierarchy/pending-store.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';
const NOW_S = Math.floor(Date.now() / 1000);

function span(over: Partial<SpanData> & { attributes?: Attributes; parent?: string } = {}): SpanData {
  const { parent, ...rest } = over;
  return {
    name: 'build',
    spanContext: () => ({ traceId: TRACE, spanId: SPAN }),
    parentSpanContext: parent ? { spanId: parent } : undefined,
    startTime: [NOW_S - 60, 123_456_789],
    endTime: [NOW_S, 987_654_321],
    status: { code: SpanStatusCode.UNSET },
    attributes: {},
    events: [],
    resource: { attributes: {} },
    ...rest,
  };
}

const noProblems = (key: string, problem: string): never => assert.fail(`unexpected problem ${key}: ${problem}`);
const parse = (a: Attributes): CiAttributes => readCiAttributes(a, noProblems);
const NONE: CiAttributes = { values: [] };
const DEFAULTS = { provider_name: 'custom' };

function map(level: Level, attrs: Attributes = {}, inherited: Lineage = EMPTY_LINEAGE, s: SpanData = span({ attributes: attrs }), resource: CiAttributes = NONE) {
  return mapSpan(s, level, parse(attrs), resource, inherited, DEFAULTS);
}

test('ids: the trace ID as a UUID, and trace prefix + span ID for the rest', () => {
  assert.equal(traceIdToUuid(TRACE), '0af76519-16cd-43dd-8448-eb211c80319c');
  assert.equal(spanIdToUuid(TRACE, SPAN), '0af76519-16cd-43dd-b7ad-6b7169203331');
});

test('time: RFC3339 with microseconds, no rounding up', () => {
  assert.equal(hrTimeToRfc3339([1_700_000_000, 123_456_789]), '2023-11-14T22:13:20.123456Z');
  assert.equal(hrTimeToRfc3339([1_700_000_000, 999_999_999]), '2023-11-14T22:13:20.999999Z');
  assert.equal(hrTimeToRfc3339([1_700_000_000, 5_000]), '2023-11-14T22:13:20.000005Z');
});

test('attributes: one rule, ci. + the field path, with types coerced', () => {
  const problems: string[] = [];
  const parsed = readCiAttributes(
    {
      'ci.level': 'job',
      'ci.url': 'https://ci/1',
      'ci.queue_time': '1500',
      'ci.is_manual': 'true',
      'ci.tags': ['team:ci', 'tier:1'],
      'ci.node.labels': 'linux, x64',
      'ci.git.sha': 'abc',
      'ci.parameters.TARGET': 'prod',
      'ci.pipeline.name': 'other vocabulary', // names no field: not sent
      'ci.partial_retry': 'maybe',
      'http.method': 'GET',
    },
    (key, p) => problems.push(`${key}: ${p}`),
  );
  assert.equal(parsed.level, 'job');
  // values: pairs laid flat (spec, value, spec, value, ...)
  const byKey: Record<string, unknown> = {};
  for (let i = 0; i < parsed.values.length; i += 2) byKey[(parsed.values[i] as FieldSpec).path.join('.')] = parsed.values[i + 1];
  assert.deepEqual(byKey, {
    url: 'https://ci/1',
    queue_time: 1500,
    is_manual: true,
    tags: ['team:ci', 'tier:1'],
    'node.labels': ['linux', 'x64'],
    'git.sha': 'abc',
  });
  assert.deepEqual(parsed.parameters, { TARGET: 'prod' });
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^ci\.partial_retry: expects a boolean/);
});

test('transform: derived fields of a root pipeline', () => {
  const m = map('pipeline', { 'ci.url': 'https://ci/1' });
  assert.deepEqual(m.resource, {
    level: 'pipeline',
    url: 'https://ci/1',
    name: 'build',
    unique_id: traceIdToUuid(TRACE),
    partial_retry: false,
    status: 'success',
    start: hrTimeToRfc3339([NOW_S - 60, 123_456_789]),
    end: hrTimeToRfc3339([NOW_S, 987_654_321]),
  });
  assert.deepEqual(m.envelope, { provider_name: 'custom' });
  assert.deepEqual(m.lineage.pipeline, { unique_id: traceIdToUuid(TRACE), name: 'build' });
});

test('transform: a pipeline nested under another span gets the span-derived id; ci.unique_id wins', () => {
  assert.equal(map('pipeline', {}, EMPTY_LINEAGE, span({ parent: '1111111111111111' })).resource.unique_id, spanIdToUuid(TRACE, SPAN));
  assert.equal(map('pipeline', { 'ci.unique_id': 'u-1' }).resource.unique_id, 'u-1');
  assert.equal(map('pipeline', { 'ci.id': 'u-2' }).resource.unique_id, 'u-2');
  assert.equal(map('pipeline', { 'ci.id': 'u-2' }).resource.id, undefined);
});

test('transform: links come from the lineage, over explicit attributes', () => {
  const inherited: Lineage = {
    pipeline: { unique_id: 'p-id', name: 'pipe' },
    stage: { id: 's-id', name: 'stage' },
    job: { id: 'j-id', name: 'job' },
  };
  const step = map('step', { 'ci.pipeline_name': 'ignored' }, inherited).resource;
  assert.equal(step.pipeline_unique_id, 'p-id');
  assert.equal(step.pipeline_name, 'pipe');
  assert.equal(step.stage_id, 's-id');
  assert.equal(step.stage_name, 'stage');
  assert.equal(step.job_id, 'j-id');
  assert.equal(step.job_name, 'job');
  assert.equal(step.id, spanIdToUuid(TRACE, SPAN));
  // A job takes no job link, a stage no stage link.
  const job = map('job', {}, inherited).resource;
  assert.equal(job.job_id, undefined);
  assert.equal(job.stage_id, 's-id');
  const stage = map('stage', {}, inherited).resource;
  assert.equal(stage.stage_id, undefined);
  // Without a pipeline ancestor, explicit attributes supply the link and pass it on.
  const lone = map('job', { 'ci.pipeline_unique_id': 'x', 'ci.pipeline_name': 'remote' });
  assert.equal(lone.resource.pipeline_name, 'remote');
  assert.deepEqual(lone.lineage.pipeline, { unique_id: 'x', name: 'remote' });
  assert.deepEqual(lone.lineage.job, { id: spanIdToUuid(TRACE, SPAN), name: 'build' });
});

test('transform: a stage resets the job link it passes down', () => {
  const m = map('stage', {}, { pipeline: { unique_id: 'p', name: 'p' }, job: { id: 'j', name: 'j' } });
  assert.equal(m.lineage.job, undefined);
  assert.equal(m.lineage.stage?.name, 'build');
});

test('transform: error from the first exception event, else the status message', () => {
  const withEvent = span({
    status: { code: SpanStatusCode.ERROR, message: 'status text' },
    events: [
      { name: 'log' },
      { name: 'exception', attributes: { 'exception.type': 'TypeError', 'exception.message': 'bad', 'exception.stacktrace': 'at x' } },
      { name: 'exception', attributes: { 'exception.type': 'Second' } },
    ],
  });
  const r = mapSpan(withEvent, 'step', NONE, NONE, EMPTY_LINEAGE, DEFAULTS).resource;
  assert.equal(r.status, 'error');
  assert.deepEqual(r.error, { type: 'TypeError', message: 'bad', stack: 'at x' });
  const statusOnly = span({ status: { code: SpanStatusCode.ERROR, message: 'exit code 2' } });
  assert.deepEqual(mapSpan(statusOnly, 'step', NONE, NONE, EMPTY_LINEAGE, DEFAULTS).resource.error, { message: 'exit code 2' });
  // Explicit attributes win field by field.
  const explicit = mapSpan(withEvent, 'step', parse({ 'ci.error.domain': 'user', 'ci.error.message': 'mine' }), NONE, EMPTY_LINEAGE, DEFAULTS);
  assert.deepEqual(explicit.resource.error, { type: 'TypeError', message: 'mine', stack: 'at x', domain: 'user' });
  // A successful span carries no error.
  assert.equal(map('step').resource.error, undefined);
});

test('transform: running status leaves end out', () => {
  const m = map('job', { 'ci.status': 'running', 'ci.url': 'u' });
  assert.equal(m.resource.end, undefined);
  assert.equal(m.resource.status, 'running');
});

test('transform: layering is own > ancestors > resource > defaults', () => {
  const resource = parse({ 'ci.env': 'from-resource', 'ci.git.repository_url': 'r', 'ci.git.branch': 'res-branch' });
  const inherited: Lineage = { pipeline: { unique_id: 'p', name: 'p' }, env: 'from-pipeline', git: { sha: 's', author_email: 'a', branch: 'main' } };
  const m = mapSpan(span(), 'job', parse({ 'ci.git.tag': 'v1' }), resource, inherited, { provider_name: 'custom', env: 'default' });
  assert.equal(m.envelope.env, 'from-pipeline');
  assert.deepEqual(m.resource.git, { repository_url: 'r', sha: 's', author_email: 'a', tag: 'v1' });
  const own = mapSpan(span(), 'job', parse({ 'ci.env': 'own' }), resource, inherited, { provider_name: 'custom', env: 'default' });
  assert.equal(own.envelope.env, 'own');
  const bare = mapSpan(span(), 'job', NONE, NONE, {}, { provider_name: 'gitlab', env: 'default', service: 'svc', hostname: 'h' });
  assert.deepEqual(bare.envelope, { provider_name: 'gitlab', env: 'default', service: 'svc' });
  assert.deepEqual(bare.resource.node, { hostname: 'h' });
});

test('transform: fields a level does not have are not sent', () => {
  const stage = map('stage', { 'ci.url': 'u', 'ci.partial_retry': true, 'ci.dependencies': ['a'] }).resource;
  assert.equal(stage.url, undefined);
  assert.equal(stage.partial_retry, undefined);
  assert.deepEqual(stage.dependencies, ['a']);
  const step = map('step', { 'ci.queue_time': 5 }).resource;
  assert.equal(step.queue_time, undefined);
});

test("transform: a resource's layers, kept for all its spans, map every span as a fresh parse would", () => {
  // mapSpanParts keeps a resource's git and envelope per level (resourceLayer): the same objects
  // for all its spans. Whatever the level, lineage or the span's own git, nothing may carry over.
  const resourceAttributes: Attributes = { 'ci.env': 'res', 'ci.git.repository_url': 'https://r', 'ci.git.sha': 'a'.repeat(40), 'ci.git.branch': 'main', 'ci.node.name': 'n1' };
  const otherResource: Attributes = { 'ci.env': 'res2', 'ci.git.repository_url': 'https://r2', 'ci.git.sha': 'c'.repeat(40), 'ci.git.tag': 'v0' };
  const kept = parse(resourceAttributes);
  const keptOther = parse(otherResource);
  const owns: Attributes[] = [{}, { 'ci.git.sha': 'b'.repeat(40) }, { 'ci.git.tag': 'v1' }, { 'ci.env': 'own', 'ci.service': 'svc' }, { 'ci.git.repository_url': 'https://other' }];
  const levels: Level[] = ['pipeline', 'stage', 'job', 'step'];
  let inherited: Lineage = EMPTY_LINEAGE;
  for (let i = 0; i < 40; i++) {
    const level = levels[i % 4]!;
    const own = owns[(i * 7) % owns.length]!;
    const s = span({ attributes: own });
    const other = i % 3 === 2; // two resources' spans interleaved, as two processes' in one collector
    const a = mapSpan(s, level, parse(own), other ? keptOther : kept, inherited, DEFAULTS);
    const b = mapSpan(s, level, parse(own), parse(other ? otherResource : resourceAttributes), inherited, DEFAULTS);
    assert.deepEqual(a, b, `span ${i} (${level}, own ${JSON.stringify(own)})`);
    inherited = i % 9 === 8 ? EMPTY_LINEAGE : a.lineage;
  }
  // Each resource its own layers.
  for (const [attrs, env, url] of [[kept, 'res', 'https://r'], [keptOther, 'res2', 'https://r2']] as const) {
    for (const level of levels) {
      const m = mapSpan(span(), level, NONE, attrs, EMPTY_LINEAGE, DEFAULTS);
      assert.equal(m.envelope.env, env, level);
      assert.equal((m.resource.git as Record<string, string>).repository_url, url, level);
    }
  }
  // An envelope is reused from one span to the next only when all three of its values match.
  const envelopes = [{ 'ci.service': 'svc' }, {}, { 'ci.env': 'e' }, { 'ci.env': 'e', 'ci.provider_name': 'jenkins' }, {}].map(
    (a) => mapSpan(span(), 'pipeline', parse(a), NONE, EMPTY_LINEAGE, DEFAULTS).envelope,
  );
  assert.deepEqual(envelopes, [
    { provider_name: 'custom', service: 'svc' },
    { provider_name: 'custom' },
    { provider_name: 'custom', env: 'e' },
    { provider_name: 'jenkins', env: 'e' },
    { provider_name: 'custom' },
  ]);
  // Its git is one object at every level: a pipeline's git is the one its descendants inherit.
  const p = mapSpan(span(), 'pipeline', NONE, kept, EMPTY_LINEAGE, DEFAULTS);
  const st = mapSpan(span(), 'step', NONE, kept, p.lineage, DEFAULTS);
  assert.equal(st.lineage.git, p.lineage.git);
});

test('mergeGit: a layer naming a tag or branch replaces both below it', () => {
  assert.deepEqual(mergeGit({ branch: 'main', sha: 'a' }, { tag: 'v1' }), { sha: 'a', tag: 'v1' });
  assert.deepEqual(mergeGit({ branch: 'main', sha: 'a' }, { sha: 'b' }), { branch: 'main', sha: 'b' });
  assert.equal(mergeGit(undefined, undefined), undefined);
});

// --- validation ---

const NOW = Date.now();
function check(level: Level, attrs: Attributes, fallback: 'success' | 'error' = 'success') {
  const m = map(level, attrs, { pipeline: { unique_id: 'p', name: 'p' } });
  return { verdict: validateEvent(m.resource, m, 'it', NOW, fallback), r: m.resource };
}

test('validate: a pipeline or job without url is dropped, naming field and attribute', () => {
  for (const level of ['pipeline', 'job'] as const) {
    const { verdict } = check(level, {});
    assert.equal(verdict.ok, false);
    if (!verdict.ok) {
      assert.equal(verdict.reason, 'invalid');
      assert.match(verdict.problem.message, /field "url" is required/);
      assert.match(verdict.problem.message, /ci\.url/);
    }
  }
  assert.equal(check('stage', {}).verdict.ok, true);
  assert.equal(check('step', {}).verdict.ok, true);
});

test('validate: a stage without a pipeline is orphaned', () => {
  const m = map('stage');
  const v = validateEvent(m.resource, m, 'it', NOW);
  assert.equal(v.ok, false);
  if (!v.ok) {
    assert.equal(v.reason, 'orphaned');
    assert.match(v.problem.message, /ci\.pipeline_unique_id/);
  }
});

test('validate: statuses are mapped to the level enum', () => {
  assert.equal(check('step', { 'ci.status': 'canceled' }).r.status, 'error');
  assert.equal(check('step', { 'ci.status': 'skipped' }).r.status, 'success');
  assert.equal(check('job', { 'ci.url': 'u', 'ci.status': 'cancelled' }).r.status, 'canceled');
  assert.equal(check('job', { 'ci.url': 'u', 'ci.status': 'FAILED' }).r.status, 'error');
  assert.equal(check('stage', { 'ci.status': 'blocked' }).r.status, 'canceled');
  assert.equal(check('stage', { 'ci.status': 'weird' }, 'error').r.status, 'error');
  const fixed = check('step', { 'ci.status': 'canceled' }).verdict;
  assert.equal(fixed.fixes.length, 1);
  assert.match(fixed.fixes[0]!.message, /not a step status/);
  assert.equal(check('job', { 'ci.url': 'u', 'ci.status': 'canceled' }).verdict.fixes.length, 0);
});

test('validate: tags, metrics, error limits and domain are fixed', () => {
  const { verdict, r } = check('step', {
    'ci.tags': ['ok:1', 'bad', ':novalue'],
    'ci.metrics': ['m:1.5', 'n:abc'],
    'ci.error.message': 'x'.repeat(6000),
    'ci.error.type': 't'.repeat(200),
    'ci.error.domain': 'infra',
  });
  assert.equal(verdict.ok, true);
  assert.deepEqual(r.tags, ['ok:1']);
  assert.deepEqual(r.metrics, ['m:1.5']);
  const error = r.error as Record<string, string>;
  assert.equal(error.message!.length, 5000);
  assert.equal(error.type!.length, 100);
  assert.equal(error.domain, 'unknown');
  assert.deepEqual(verdict.fixes.map((f) => f.kind).sort(), ['fix:error-domain', 'fix:error-message-length', 'fix:error-type-length', 'fix:metrics', 'fix:tags']);
});

test('validate: git needs its required fields and one of tag/branch', () => {
  const git = { 'ci.git.repository_url': 'https://g', 'ci.git.sha': 'a'.repeat(40), 'ci.git.author_email': 'a@b' };
  const both = check('step', { ...git, 'ci.git.tag': 'v1', 'ci.git.branch': 'main' });
  assert.deepEqual(both.r.git, { repository_url: 'https://g', sha: 'a'.repeat(40), author_email: 'a@b', tag: 'v1' });
  const partial = check('step', { 'ci.git.branch': 'main' });
  assert.equal(partial.r.git, undefined);
  assert.match(partial.verdict.fixes[0]!.message, /ci\.git\.repository_url, ci\.git\.sha, ci\.git\.author_email/);
  assert.equal(check('step', { ...git, 'ci.git.sha': 'nothex' }).r.git, undefined);
  const times = check('step', { ...git, 'ci.git.commit_time': '2024-01-02 03:04:05Z', 'ci.git.author_time': 'yesterday' });
  assert.equal((times.r.git as Record<string, string>).commit_time, '2024-01-02T03:04:05.000Z');
  assert.equal((times.r.git as Record<string, string>).author_time, undefined);
});

test('validate: events older than 18 hours are dropped; longer than a year invalid', () => {
  const old = span({ startTime: [NOW_S - 20 * 3600, 0], endTime: [NOW_S - 19 * 3600, 0] });
  const m = mapSpan(old, 'step', NONE, NONE, { pipeline: { unique_id: 'p', name: 'p' } }, DEFAULTS);
  const v = validateEvent(m.resource, m, 'it', NOW);
  assert.equal(v.ok, false);
  if (!v.ok) assert.equal(v.reason, 'too_old');
  const long = span({ startTime: [NOW_S - 400 * 86400, 0], endTime: [NOW_S, 0] });
  const ml = mapSpan(long, 'step', NONE, NONE, { pipeline: { unique_id: 'p', name: 'p' } }, DEFAULTS);
  const vl = validateEvent(ml.resource, ml, 'it', NOW);
  assert.equal(vl.ok, false);
  if (!vl.ok) assert.equal(vl.reason, 'invalid');
});

test('validate: parent_pipeline and previous_attempt need an id', () => {
  const { r } = check('pipeline', { 'ci.url': 'u', 'ci.parent_pipeline.url': 'x', 'ci.previous_attempt.id': 'id', 'ci.previous_attempt.url': 'y' });
  assert.equal(r.parent_pipeline, undefined);
  assert.deepEqual(r.previous_attempt, { id: 'id', url: 'y' });
});

test('SDK 1.x spans (parentSpanId, no parentSpanContext) link like SDK 2.x ones', () => {
  const mk = (spanId: string, parentSpanId: string | undefined, name: string): SpanData => ({
    ...span({ name }),
    spanContext: () => ({ traceId: TRACE, spanId }),
    parentSpanContext: undefined,
    parentSpanId,
  });
  const resolved: string[] = [];
  const store = new PendingStore(
    { maxPendingSpans: 10, maxRememberedSpans: 10, maxAgeMs: 3_600_000 },
    {
      resolve: (s, level, inherited) => {
        resolved.push(`${s.name}<${inherited.pipeline?.name ?? ''}`);
        return level === 'pipeline' ? { pipeline: { unique_id: 'u', name: s.name } } : inherited;
      },
      evict: () => assert.fail('nothing is evicted'),
    },
  );
  store.add(mk('2222222222222222', '1111111111111111', 'job'), 'job');
  assert.deepEqual(resolved, [], 'the job waits for its parent');
  store.add(mk('1111111111111111', undefined, 'pipe'), 'pipeline');
  assert.deepEqual(resolved, ['pipe<', 'job<pipe']);
  // A nested 1.x pipeline is not its trace's root: span-derived unique_id.
  const nested = mk('3333333333333333', '1111111111111111', 'inner');
  assert.equal(mapSpan(nested, 'pipeline', NONE, NONE, EMPTY_LINEAGE, DEFAULTS).resource.unique_id, spanIdToUuid(TRACE, '3333333333333333'));
});
