// The OpenTelemetry Collector's gitlabreceiver: one batch per finished pipeline (Pipeline Hook),
// root → stage spans (no attributes) → job spans (`cicd.pipeline.task.*`). Recognised by its
// resource: `vcs.provider.name=gitlab` with `cicd.pipeline.run.url.full` and `cicd.pipeline.result`. Datadog's GitLab model
// is pipeline / stage / job (GitLab scripts are not steps in Datadog).
import { parentOf, type Lineage } from '../mapping/transform.js';
import { hrMs, list, msValue, own, put, putGit, putStatus, putTags, res, resultStatus, spanStatus, vcsGit, type Status } from './common.js';
import type { Children, CiValues, Decision, VocabSpan, Vocabulary } from './types.js';

const TASK_NAME = 'cicd.pipeline.task.name';
const TASK_RESULT = 'cicd.pipeline.task.run.result';
/** Failures of the runner or GitLab itself, not of the job's script. */
const PROVIDER_FAILURES = new Set(['runner_system_failure', 'stuck_or_timeout_failure', 'scheduler_failure', 'data_integrity_failure', 'api_failure', 'runner_unsupported']);

/**
 * A stage's status from its jobs, as GitLab computes it: a retried job counts by its latest
 * attempt (same name, later start), a failed job allowed to fail counts as success; then the
 * worst of error > canceled > success > skipped. Undefined when no job is known.
 */
export function stageStatusFromJobs(jobs: readonly VocabSpan[]): Status | undefined {
  const latest = new Map<string, VocabSpan>();
  for (const j of jobs) {
    const name = own(j, TASK_NAME);
    if (name === undefined) continue;
    const prev = latest.get(name);
    if (!prev || hrMs(j.startTime) >= hrMs(prev.startTime)) latest.set(name, j);
  }
  if (latest.size === 0) return undefined;
  const seen = new Set<Status>();
  for (const j of latest.values()) {
    let s = resultStatus(own(j, TASK_RESULT)) ?? spanStatus(j);
    if (s === 'error' && j.attributes['gitlab.job.allow_failure'] === true) s = 'success';
    seen.add(s);
  }
  for (const s of ['error', 'canceled', 'success', 'skipped'] as const) if (seen.has(s)) return s;
  return undefined;
}

function pipeline(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  // Unnamed GitLab pipelines: the project path (what Datadog uses), not the span name (a commit title).
  put(out, 'ci.name', res(span, 'cicd.pipeline.name') ?? res(span, 'service.name') ?? span.name);
  const url = res(span, 'cicd.pipeline.run.url.full');
  put(out, 'ci.url', url);
  putStatus(out, tags, 'pipeline', resultStatus(res(span, 'cicd.pipeline.result')));
  put(out, 'ci.pipeline_id', res(span, 'cicd.pipeline.run.id'));
  out['ci.provider_name'] = 'gitlab';
  const source = own(span, 'gitlab.pipeline.source');
  if (source) tags.push(`gitlab.pipeline.source:${source}`);
  // parent_pipeline.id must be the parent's event UUID, which is derived from a trace ID the
  // receiver hashes from the parent's finish time: unknowable here. Kept as tags instead.
  const parentId = own(span, 'gitlab.pipeline.source.pipeline.id');
  if (parentId) tags.push(`gitlab.parent_pipeline.id:${parentId}`);
  const parentProject = own(span, 'gitlab.pipeline.source.project.url');
  if (parentProject) tags.push(`gitlab.parent_pipeline.project_url:${parentProject}`);
  const change = res(span, 'vcs.change.id');
  if (change) tags.push(`pr.number:${change}`);
  putGit(out, tags, vcsGit(span));
  putTags(out, tags);
  return { level: 'pipeline', values: out, context: url ? { vocabulary: 'gitlab-receiver', runUrl: url } : { vocabulary: 'gitlab-receiver' } };
}

function job(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  put(out, 'ci.name', own(span, TASK_NAME) ?? span.name);
  put(out, 'ci.url', own(span, 'cicd.pipeline.task.run.url.full'));
  // `canceled` stays canceled although the receiver marks the span ERROR.
  const status = putStatus(out, tags, 'job', resultStatus(own(span, TASK_RESULT)));
  const queued = span.attributes['gitlab.job.queued_duration'];
  if (typeof queued === 'number') put(out, 'ci.queue_time', msValue(queued * 1000)); // seconds
  const reason = own(span, 'gitlab.job.failure_reason');
  if ((status ?? spanStatus(span)) === 'error' && reason) {
    out['ci.error.type'] = reason;
    out['ci.error.domain'] = PROVIDER_FAILURES.has(reason) ? 'provider' : 'user';
  }
  put(out, 'ci.node.name', own(span, 'cicd.worker.name'));
  const labels = list(span.attributes['cicd.worker.tags']);
  if (labels) out['ci.node.labels'] = labels;
  if (span.attributes['gitlab.job.allow_failure'] === true) tags.push('gitlab.job.allow_failure:true');
  const environment = own(span, 'cicd.pipeline.task.run.environment.name');
  if (environment) tags.push(`environment:${environment}`);
  putTags(out, tags);
  return { level: 'job', values: out };
}

function stage(span: VocabSpan, children: Children): Decision {
  const out: CiValues = {};
  // The receiver's own stage status is its first job's; the jobs in the same batch say better.
  // Without them (they arrived later than the stage was resolved), the span status stands.
  put(out, 'ci.status', stageStatusFromJobs(children()) ?? spanStatus(span));
  return { level: 'stage', values: out };
}

export const gitlabReceiver: Vocabulary = {
  name: 'gitlab-receiver',
  // The run's result on the resource: only a finished pipeline's webhook has it (a program that
  // runs inside a GitLab job may carry the run's URL and provider on its resource, not its result).
  recognise: (span) =>
    span.resource.attributes['vcs.provider.name'] === 'gitlab' &&
    span.resource.attributes['cicd.pipeline.run.url.full'] !== undefined &&
    span.resource.attributes['cicd.pipeline.result'] !== undefined,
  decide(span: VocabSpan, _lineage: Lineage, children: Children): Decision {
    if (!parentOf(span)) return pipeline(span);
    if (span.attributes[TASK_NAME] !== undefined) return job(span);
    return stage(span, children);
  },
};
