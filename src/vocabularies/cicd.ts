// OpenTelemetry CICD semantic conventions (release candidate): a pipeline-run span
// (`cicd.pipeline.result`, or a trace root naming the run) and task spans
// (`cicd.pipeline.task.*`). The conventions define no stage and no nesting of tasks; receivers
// nest steps under jobs with task keys on both, so a task with a job ancestor is a step.
// Pipeline identity is a resource entity, so every key is read on the span first, then the resource.
import type { Lineage } from '../mapping/transform.js';
import { parentOf } from '../mapping/transform.js';
import { either, own, put, putError, putGit, putStatus, putTags, resultStatus, vcsGit, type Status } from './common.js';
import type { CiValues, Decision, VocabSpan, Vocabulary } from './types.js';

const PIPELINE_RESULT = 'cicd.pipeline.result';
const TASK_NAME = 'cicd.pipeline.task.name';
const TASK_RESULT = 'cicd.pipeline.task.run.result';
const RUN_ID = 'cicd.pipeline.run.id';
const PIPELINE_NAME = 'cicd.pipeline.name';

const isTask = (span: VocabSpan): boolean => span.attributes[TASK_NAME] !== undefined || span.attributes[TASK_RESULT] !== undefined;

/** The span name semconv gives a pipeline run: `{action} {pipeline}` or `{action}`. */
const ACTION_NAME = /^(?:BUILD|RUN|SYNC)(?: \S|$)/;

/**
 * A pipeline run: `cicd.pipeline.result` on the span; or a trace root that names the run on
 * itself; or a root named `{action} …` in a process whose resource names the run. A resource
 * alone is not enough: any program run by a CI job may carry the run's identity on its resource
 * (the entity is meant for that), and its HTTP roots are no pipelines.
 */
const isPipeline = (span: VocabSpan): boolean =>
  span.attributes[PIPELINE_RESULT] !== undefined ||
  (!parentOf(span) &&
    (span.attributes[RUN_ID] !== undefined ||
      span.attributes[PIPELINE_NAME] !== undefined ||
      span.attributes['cicd.pipeline.action.name'] !== undefined ||
      ((span.resource.attributes[RUN_ID] !== undefined || span.resource.attributes[PIPELINE_NAME] !== undefined) && ACTION_NAME.test(span.name))));

/** `BUILD nightly` → `nightly`: the span name is `{action} {pipeline}` when no name attribute says it. */
export function nameWithoutAction(name: string): string {
  const m = /^(?:BUILD|RUN|SYNC) (\S.*)$/.exec(name);
  return m ? m[1]! : name;
}

/** The error domain semconv implies: `error` is the CI system's failure, anything else the user's. */
export function domainOf(raw: string | undefined): string {
  return raw?.toLowerCase() === 'error' ? 'provider' : 'user';
}

export function cicdPipeline(span: VocabSpan, out: CiValues, tags: string[]): Status | undefined {
  put(out, 'ci.name', either(span, PIPELINE_NAME) ?? nameWithoutAction(span.name));
  const raw = own(span, PIPELINE_RESULT);
  const status = putStatus(out, tags, 'pipeline', resultStatus(raw));
  put(out, 'ci.url', either(span, 'cicd.pipeline.run.url.full'));
  put(out, 'ci.pipeline_id', either(span, RUN_ID));
  putError(out, status, own(span, 'error.type'), domainOf(raw));
  const action = either(span, 'cicd.pipeline.action.name');
  if (action) tags.push(`cicd.pipeline.action.name:${action}`);
  return status;
}

export function cicdTask(span: VocabSpan, level: 'job' | 'step', out: CiValues, tags: string[]): Status | undefined {
  put(out, 'ci.name', own(span, TASK_NAME) ?? span.name);
  const raw = own(span, TASK_RESULT);
  const status = putStatus(out, tags, level, resultStatus(raw));
  put(out, 'ci.url', own(span, 'cicd.pipeline.task.run.url.full'));
  putError(out, status, own(span, 'error.type'), domainOf(raw));
  put(out, 'ci.node.name', own(span, 'cicd.worker.name'));
  const type = own(span, 'cicd.pipeline.task.type');
  if (type) tags.push(`cicd.pipeline.task.type:${type}`);
  return status;
}

export const cicd: Vocabulary = {
  name: 'cicd',
  recognise: (span) => isTask(span) || isPipeline(span),
  decide(span: VocabSpan, lineage: Lineage): Decision {
    const out: CiValues = {};
    const tags: string[] = [];
    if (isTask(span)) {
      const level = lineage.job ? 'step' : 'job';
      cicdTask(span, level, out, tags);
      putTags(out, tags);
      return { level, values: out };
    }
    if (!isPipeline(span)) return {};
    cicdPipeline(span, out, tags);
    putGit(out, tags, vcsGit(span));
    putTags(out, tags);
    const runUrl = out['ci.url'] as string | undefined;
    return { level: 'pipeline', values: out, context: runUrl ? { vocabulary: 'cicd', runUrl } : { vocabulary: 'cicd' } };
  },
};
