// The OpenTelemetry Collector's githubreceiver: one batch per completed webhook, each with its
// own resource. The `workflow_run` batch (a root span, no span attributes) arrives after the
// `workflow_job` batches (job span → `queue-<job>` span and step spans), so a job waits for its
// root in the store like any child. Recognised by resource keys only it writes:
// `cicd.pipeline.run.status` (run; also raw conclusions on job batches) and
// `cicd.pipeline.run.task.status` (job).
import { SpanStatusCode } from '@opentelemetry/api';
import { traceIdToUuid } from '../mapping/ids.js';
import { parentOf, type Lineage } from '../mapping/transform.js';
import { durationMs, hrMs, list, msValue, own, put, putGit, putStatus, putTags, repositoryFromRunUrl, res, resultStatus } from './common.js';
import type { Children, CiValues, Decision, VocabSpan, Vocabulary } from './types.js';

const RUN_STATUS = 'cicd.pipeline.run.status';
const TASK_STATUS = 'cicd.pipeline.run.task.status';
const QUEUE_DURATION = 'cicd.pipeline.run.queue.duration';

const isJobBatch = (span: VocabSpan): boolean =>
  span.resource.attributes['cicd.pipeline.task.run.url.full'] !== undefined || span.resource.attributes['cicd.pipeline.task.run.id'] !== undefined;

const isQueue = (span: VocabSpan): boolean => span.attributes[QUEUE_DURATION] !== undefined;

function pipeline(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  put(out, 'ci.name', res(span, 'cicd.pipeline.name') ?? span.name);
  const url = res(span, 'cicd.pipeline.run.url.full');
  put(out, 'ci.url', url);
  putStatus(out, tags, 'pipeline', resultStatus(res(span, RUN_STATUS)));
  put(out, 'ci.pipeline_id', res(span, 'cicd.pipeline.run.id'));
  out['ci.provider_name'] = 'github';
  // A run attempt > 1 links to the previous attempt's trace (span ID empty): that trace's root
  // is the previous attempt's pipeline, whose unique_id is its trace ID as a UUID.
  const previous = span.links?.find((l) => /^[0-9a-f]{32}$/i.test(l.context.traceId) && l.context.traceId !== span.spanContext().traceId);
  if (previous) {
    out['ci.previous_attempt.id'] = traceIdToUuid(previous.context.traceId.toLowerCase());
    put(out, 'ci.previous_attempt.url', res(span, 'cicd.pipeline.run.previous_attempt.url.full'));
  }
  const ref = res(span, 'vcs.ref.head') ?? res(span, 'vcs.ref.head.name');
  const tag = res(span, 'vcs.ref.type') === 'tag' || res(span, 'vcs.ref.head.type') === 'tag';
  putGit(out, tags, {
    repository_url: repositoryFromRunUrl(url),
    sha: res(span, 'vcs.ref.head.revision'),
    branch: tag ? undefined : ref,
    tag: tag ? ref : undefined,
    author_email: res(span, 'vcs.ref.head.revision.author.email'),
    author_name: res(span, 'vcs.ref.head.revision.author.name'),
  });
  putTags(out, tags);
  return { level: 'pipeline', values: out, context: url ? { vocabulary: 'github-receiver', runUrl: url } : { vocabulary: 'github-receiver' } };
}

function job(span: VocabSpan, children: Children): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  put(out, 'ci.name', span.name); // the resource's cicd.pipeline.name is the job's name here, not the workflow's
  put(out, 'ci.url', res(span, 'cicd.pipeline.task.run.url.full'));
  putStatus(out, tags, 'job', resultStatus(res(span, TASK_STATUS) ?? res(span, RUN_STATUS)));
  put(out, 'ci.node.name', res(span, 'cicd.pipeline.worker.name'));
  const labels = list(span.resource.attributes['cicd.pipeline.worker.labels']);
  if (labels) out['ci.node.labels'] = labels;
  // The job span starts at created_at, queue included; Datadog wants the start without it.
  const queue = children().find(isQueue);
  if (queue) {
    const ns = queue.attributes[QUEUE_DURATION];
    out['ci.queue_time'] = (typeof ns === 'number' ? msValue(ns / 1e6) : undefined) ?? durationMs(queue); // nanoseconds
    out['ci.start'] = Math.max(hrMs(span.startTime), hrMs(queue.endTime));
  }
  putTags(out, tags);
  return { level: 'job', values: out };
}

function step(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  put(out, 'ci.name', own(span, 'cicd.pipeline.task.name') ?? span.name);
  let raw = own(span, TASK_STATUS);
  // Upstream bug: a skipped step is written `failure` with the span status left UNSET.
  if (raw === 'failure' && span.status.code === SpanStatusCode.UNSET) raw = 'skip';
  putStatus(out, tags, 'step', resultStatus(raw));
  putTags(out, tags);
  return { level: 'step', values: out };
}

export const githubReceiver: Vocabulary = {
  name: 'github-receiver',
  recognise: (span) => span.resource.attributes[RUN_STATUS] !== undefined || span.resource.attributes[TASK_STATUS] !== undefined,
  decide(span: VocabSpan, _lineage: Lineage, children: Children): Decision {
    if (!isJobBatch(span)) return parentOf(span) ? {} : pipeline(span);
    if (span.attributes['cicd.pipeline.task.name'] !== undefined) return step(span);
    if (isQueue(span) || span.name.startsWith('queue-')) return {};
    return job(span, children);
  },
};
