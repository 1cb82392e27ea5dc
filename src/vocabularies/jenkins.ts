// The Jenkins OpenTelemetry plugin: `BUILD <job>` root (with `ci.pipeline.*` keys: its
// vocabulary, not this project's contract) → `Phase:` spans → `Agent` (node block) →
// `Agent Allocation`, `Stage: <name>`, `Parallel branch: <name>`, and one span per atomic step.
// Mapped as Datadog's own Jenkins plugin does: pipeline = the build, stage = `Stage:` spans,
// every atomic step = a job (URL = run URL + `execution/node/<id>/`). Phases, agents and
// parallel branches make no event; their children link through them, a branch's name becomes
// a tag of what runs in it, and `Agent Allocation`'s time becomes the queue time of what the
// agent block runs first.
import { hrMs, durationMs, list, own, put, putStatus, putGit, putTags, resultStatus } from './common.js';
import { parentOf, type Lineage } from '../mapping/transform.js';
import type { Children, CiValues, Decision, VocabContext, VocabSpan, Vocabulary } from './types.js';

const RUN_URL = 'ci.pipeline.run.url';
const STEP_TYPE = 'jenkins.pipeline.step.type';
const STEP_NAME = 'jenkins.pipeline.step.name';
const STEP_ID = 'jenkins.pipeline.step.id';
const STEP_RESULT = 'jenkins.pipeline.step.result';
export const PARALLEL_BRANCH_TAG = 'jenkins.parallel_branch';

const isAllocation = (s: VocabSpan): boolean => s.name === 'Agent Allocation' || s.attributes[STEP_NAME] === 'agent.allocate';

/**
 * Datadog's pipeline name for a Jenkins job: the job's full name; for a multibranch job the
 * parent's (every branch is one pipeline), the branch given apart.
 */
export function pipelineName(id: string, type: string | undefined): { name: string; branch?: string } {
  if (type !== 'multibranch') return { name: id };
  const i = id.lastIndexOf('/');
  if (i <= 0) return { name: id };
  let branch = id.slice(i + 1);
  try {
    branch = decodeURIComponent(branch); // Jenkins encodes `feature/x` as `feature%2Fx` in job names
  } catch {
    // keep it as it is
  }
  return { name: id.slice(0, i), branch };
}

/** Datadog's BUILD_TAG: `jenkins-<job name, / → ->-<number>`. */
export function buildTag(id: string, number: string | undefined): string | undefined {
  return number === undefined ? undefined : `jenkins-${id.replace(/\//g, '-')}-${number}`;
}

function pipeline(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  const id = own(span, 'ci.pipeline.id') ?? span.name.replace(/^BUILD /, '');
  const type = own(span, 'ci.pipeline.type');
  const { name, branch } = pipelineName(id, type);
  out['ci.name'] = name;
  const url = own(span, RUN_URL);
  put(out, 'ci.url', url);
  const raw = own(span, 'ci.pipeline.run.result');
  const status = putStatus(out, tags, 'pipeline', resultStatus(raw));
  if (raw?.toUpperCase() === 'UNSTABLE') tags.push('jenkins.result:unstable');
  put(out, 'ci.pipeline_id', buildTag(id, own(span, 'ci.pipeline.run.number')));
  out['ci.provider_name'] = 'jenkins';
  if (status === 'error') put(out, 'ci.error.type', own(span, 'exception.type'));
  const causes = list(span.attributes['ci.pipeline.run.cause']);
  if (causes) out['ci.is_manual'] = causes.some((c) => c.startsWith('UserIdCause'));
  // Parameters come as parallel arrays; sensitive values are left out (the plugin sends #REDACTED#).
  const names = span.attributes['ci.pipeline.parameter.name'];
  const values = span.attributes['ci.pipeline.parameter.value'];
  const sensitive = span.attributes['ci.pipeline.parameter.sensitive'];
  if (Array.isArray(names) && Array.isArray(values)) {
    names.forEach((n, i) => {
      if (n === null || n === undefined || (Array.isArray(sensitive) && sensitive[i] === true)) return;
      const v = values[i];
      out[`ci.parameters.${String(n)}`] = v === null || v === undefined ? '' : String(v);
    });
  }
  // The plugin records no commit SHA: git can only be tags (unless ci.git.* are set on the span).
  const isTag = own(span, 'ci.pipeline.multibranch.type') === 'tag';
  putGit(out, tags, { branch: isTag ? undefined : branch, tag: isTag ? branch : undefined });
  putTags(out, tags);
  return { level: 'pipeline', values: out, context: url ? { vocabulary: 'jenkins', runUrl: url } : { vocabulary: 'jenkins' } };
}

function nodeOf(span: VocabSpan, ctx: VocabContext | undefined, out: CiValues): void {
  put(out, 'ci.node.name', own(span, 'jenkins.computer.name'));
  put(out, 'ci.node.hostname', own(span, 'host.name'));
  if (ctx?.labels) out['ci.node.labels'] = ctx.labels as string[]; // read (and copied) by readCiAttributes
}

function stage(span: VocabSpan, lineage: Lineage): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  out['ci.name'] = own(span, STEP_NAME) ?? span.name.replace(/^Stage: /, '');
  putStatus(out, tags, 'stage', resultStatus(own(span, STEP_RESULT)));
  nodeOf(span, lineage.vocab, out);
  putTags(out, tags);
  return { level: 'stage', values: out };
}

function job(span: VocabSpan, lineage: Lineage): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  out['ci.name'] = span.name;
  const runUrl = lineage.vocab?.runUrl;
  const node = own(span, STEP_ID);
  if (runUrl && node) out['ci.url'] = `${runUrl.endsWith('/') ? runUrl : `${runUrl}/`}execution/node/${node}/`;
  putStatus(out, tags, 'job', resultStatus(own(span, STEP_RESULT)));
  const causes = span.attributes['jenkins.pipeline.step.interruption.causes'];
  if (causes !== undefined) for (const c of list(causes) ?? []) tags.push(`jenkins.interruption:${c.split(':')[0]}`);
  nodeOf(span, lineage.vocab, out);
  if (tags.length > 0) putTags(out, tags);
  return { level: 'job', values: out };
}

/** A node block: its labels for what runs in it; its allocation time for what it runs first. */
function agent(span: VocabSpan, lineage: Lineage, children: Children): Decision {
  const ctx: VocabContext = { ...(lineage.vocab ?? { vocabulary: 'jenkins' }) };
  delete ctx.queue;
  const labels = list(span.attributes['jenkins.pipeline.step.agent.label'], /\s*(?:&&|\|\||\s)\s*/);
  if (labels) ctx.labels = labels;
  const kids = children();
  const allocation = kids.find(isAllocation);
  if (allocation) {
    let first: VocabSpan | undefined;
    for (const k of kids) if (k !== allocation && (!first || hrMs(k.startTime) < hrMs(first.startTime))) first = k;
    if (first) ctx.queue = { spanId: first.spanContext().spanId, ms: durationMs(allocation) };
  }
  return { context: ctx };
}

function branch(span: VocabSpan, lineage: Lineage): Decision {
  const name = own(span, STEP_NAME) ?? span.name.replace(/^Parallel branch: /, '');
  const ctx: VocabContext = { ...(lineage.vocab ?? { vocabulary: 'jenkins' }) };
  ctx.tags = [...(ctx.tags ?? []).filter((t) => !t.startsWith(`${PARALLEL_BRANCH_TAG}:`)), `${PARALLEL_BRANCH_TAG}:${name}`];
  return { context: ctx };
}

export const jenkins: Vocabulary = {
  name: 'jenkins',
  recognise: (span) => span.attributes[STEP_TYPE] !== undefined || span.attributes[RUN_URL] !== undefined,
  decide(span: VocabSpan, lineage: Lineage, children: Children): Decision {
    if (span.attributes[RUN_URL] !== undefined && (!parentOf(span) || span.name.startsWith('BUILD '))) return pipeline(span);
    const type = own(span, STEP_TYPE);
    if (type === 'stage') return stage(span, lineage);
    if (type === 'node') return isAllocation(span) ? {} : agent(span, lineage, children);
    if (type === 'parallel') return branch(span, lineage);
    if (type === undefined) return {};
    return job(span, lineage);
  },
};
