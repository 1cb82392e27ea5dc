// Any attribute values under the keys the vocabularies read (wrong types, empty strings, arrays,
// odd names): recognising and deciding never throw, and every value they produce is one the
// contract's reader accepts without a problem (so no producer's data can make a bad event).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { readCiAttributes } from '../src/mapping/attributes.js';
import { VocabularyRegistry, VOCABULARY_NAMES, type VocabSpan } from '../src/vocabularies/index.js';
import type { Lineage } from '../src/mapping/transform.js';

const KEYS = [
  'cicd.pipeline.result', 'cicd.pipeline.name', 'cicd.pipeline.run.id', 'cicd.pipeline.run.url.full', 'cicd.pipeline.action.name',
  'cicd.pipeline.task.name', 'cicd.pipeline.task.run.result', 'cicd.pipeline.task.run.url.full', 'cicd.pipeline.task.type', 'cicd.worker.name', 'cicd.worker.tags',
  'cicd.pipeline.run.status', 'cicd.pipeline.run.task.status', 'cicd.pipeline.task.run.id', 'cicd.pipeline.run.queue.duration', 'cicd.pipeline.worker.name', 'cicd.pipeline.worker.labels',
  'cicd.pipeline.run.previous_attempt.url.full', 'vcs.provider.name', 'vcs.ref.head', 'vcs.ref.type', 'vcs.ref.head.name', 'vcs.ref.head.type', 'vcs.ref.head.revision',
  'vcs.ref.head.revision.author.email', 'vcs.ref.head.revision.timestamp', 'vcs.repository.url.full', 'vcs.change.id', 'gitlab.job.queued_duration', 'gitlab.job.failure_reason',
  'gitlab.job.allow_failure', 'gitlab.pipeline.source', 'ci.pipeline.id', 'ci.pipeline.type', 'ci.pipeline.run.url', 'ci.pipeline.run.number', 'ci.pipeline.run.result',
  'ci.pipeline.run.cause', 'ci.pipeline.parameter.name', 'ci.pipeline.parameter.value', 'ci.pipeline.parameter.sensitive', 'ci.pipeline.multibranch.type',
  'jenkins.pipeline.step.type', 'jenkins.pipeline.step.id', 'jenkins.pipeline.step.name', 'jenkins.pipeline.step.result', 'jenkins.pipeline.step.agent.label',
  'jenkins.pipeline.step.interruption.causes', 'jenkins.computer.name', 'host.name', 'github.run_id', 'github.job.id', 'github.job.step.name', 'github.job.step.conclusion',
  'github.conclusion', 'github.job.conclusion', 'github.html_url', 'github.job.labels', 'github.head_sha', 'github.head_branch', 'github.head_commit.author.name',
  'github.head_commit.author.email', 'github.head_commit.timestamp', 'github.previous_attempt_url', 'github.event', 'github.run_attempt', 'service.name', 'service.namespace',
  'error.type', 'exception.type', 'git.commit.sha', 'git.repository_url', 'git.branch', 'git.commit.author.email', 'ci.pipeline.url', 'ci.node.labels',
];
const WORDS = ['', ' ', 'success', 'failure', 'SKIP', 'ABORTED', 'stage', 'node', 'parallel', 'sh', 'gitlab', 'multibranch', 'a/b/c', '%E0%A4%A', 'https://x/actions/runs/1', 'UserIdCause:x', '0123456789abcdef0123456789abcdef01234567', ':', 'k:'];
const value = fc.oneof(
  fc.constantFrom(...WORDS),
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.array(fc.oneof(fc.constantFrom(...WORDS), fc.string(), fc.integer(), fc.boolean(), fc.constant(null)), { maxLength: 4 }),
);
const attrs = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 14 });
/** Resources that make each receiver recognise the span, so that its decisions get fuzzed too. */
const BASES: Attributes[] = [
  {},
  { 'vcs.provider.name': 'gitlab', 'cicd.pipeline.run.url.full': 'https://gl/p/1', 'cicd.pipeline.result': 'failed' },
  { 'cicd.pipeline.run.status': 'failure' },
  { 'cicd.pipeline.run.task.status': 'success', 'cicd.pipeline.task.run.url.full': 'https://github.com/o/r/actions/runs/1/job/2' },
];
/** Span keys that select each vocabulary's branches (their values still fuzzed below). */
const SPAN_BASES: string[][] = [
  [],
  ['cicd.pipeline.task.name', 'gitlab.job.queued_duration', 'cicd.pipeline.task.run.result'],
  ['jenkins.pipeline.step.type', 'jenkins.pipeline.step.id', 'jenkins.pipeline.step.result'],
  ['ci.pipeline.run.url', 'ci.pipeline.id', 'ci.pipeline.parameter.name', 'ci.pipeline.parameter.value'],
  ['github.run_id', 'github.html_url'],
  ['github.job.id', 'github.job.labels'],
  ['github.job.step.name', 'github.job.step.conclusion'],
  ['cicd.pipeline.result', 'cicd.pipeline.run.url.full'],
];
const NAMES = ['BUILD x', 'RUN', 'Agent', 'Agent Allocation', 'Stage: s', 'Parallel branch: b', 'Queued', 'queue-j', 'x'];

test('vocabularies never throw and only produce values the contract reads cleanly', () => {
  const reg = new VocabularyRegistry(VOCABULARY_NAMES);
  const runs = Number(process.env.FUZZ_RUNS ?? 3000);
  fc.assert(
    fc.property(attrs, attrs, fc.constantFrom(...BASES), fc.constantFrom(...SPAN_BASES), fc.array(value, { minLength: 4, maxLength: 4 }), fc.constantFrom(...NAMES), fc.boolean(), fc.boolean(), fc.array(attrs, { maxLength: 3 }), (a0, r0, base, spanKeys, spanValues, name, root, withCtx, kids) => {
      const r = { ...r0, ...base };
      const a: Record<string, unknown> = { ...a0 };
      spanKeys.forEach((k, i) => (a[k] = spanValues[i]));
      const mk = (at: Attributes, id: string, parent?: string): VocabSpan => ({
        name,
        spanContext: () => ({ traceId: 'b'.repeat(32), spanId: id }),
        parentSpanContext: parent ? { spanId: parent } : undefined,
        startTime: [1_700_000_000, 5],
        endTime: [1_700_000_010, 7],
        status: { code: SpanStatusCode.UNSET },
        attributes: at,
        events: [],
        resource: { attributes: r as Attributes },
      });
      const span = mk(a as Attributes, 'c'.repeat(16), root ? undefined : 'd'.repeat(16));
      const children = kids.map((k, i) => mk(k as Attributes, String(i).repeat(16), 'c'.repeat(16)));
      const lineage: Lineage = withCtx
        ? { pipeline: { unique_id: 'u', name: 'p' }, job: { id: 'j', name: 'j' }, vocab: { vocabulary: 'jenkins', runUrl: 'https://j/1/', tags: ['a:b'], labels: ['l'], queue: { spanId: 'c'.repeat(16), ms: 5 } } }
        : {};
      reg.recognise(span);
      const d = reg.resolve(span, lineage, () => children);
      if (d.values) {
        const problems: string[] = [];
        readCiAttributes(d.values, (key, problem) => problems.push(`${key} ${problem}`));
        assert.deepEqual(problems, [], JSON.stringify(d.values));
      }
      reg.levelIfEvicted(span);
    }),
    { numRuns: runs },
  );
});
