// The GitHub Actions trace exporters (corentinmusard/otel-cicd-action and its ancestor
// inception-health/otel-export-trace-action): run as a step of a `workflow_run` workflow, they
// read the run from the API and emit root (workflow run) → `Queued` + job spans → step spans,
// with `github.*` keys (the newer one adds semconv `cicd.*` keys, read first here).
import { parentOf, type Lineage } from '../mapping/transform.js';
import { cicdPipeline, cicdTask } from './cicd.js';
import { durationMs, hrMs, list, own, put, putGit, putStatus, putTags, repositoryFromRunUrl, res, resultStatus } from './common.js';
import type { Children, CiValues, Decision, VocabSpan, Vocabulary } from './types.js';

const RUN_ID = 'github.run_id';
const JOB_ID = 'github.job.id';
const STEP_NAME = 'github.job.step.name';

/** The API URL of a previous attempt → its web page (`api.github.com/repos/o/r/…` → `github.com/o/r/…`). */
export function htmlUrl(apiUrl: string | undefined): string | undefined {
  if (!apiUrl) return undefined;
  const m = /^https:\/\/api\.github\.com\/repos\/(.+)$/.exec(apiUrl);
  return m ? `https://github.com/${m[1]}` : apiUrl;
}

function pipeline(span: VocabSpan, children: Children): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  cicdPipeline(span, out, tags);
  // Fill what the semconv keys did not give (the older exporter has only github.*).
  out['ci.name'] = own(span, 'cicd.pipeline.name') ?? own(span, 'github.workflow') ?? span.name;
  const url = own(span, 'cicd.pipeline.run.url.full') ?? own(span, 'github.html_url');
  put(out, 'ci.url', url);
  if (out['ci.status'] === undefined) putStatus(out, tags, 'pipeline', resultStatus(own(span, 'github.conclusion')));
  put(out, 'ci.pipeline_id', own(span, RUN_ID));
  out['ci.provider_name'] = 'github';
  if (own(span, 'github.event') !== undefined) out['ci.is_manual'] = own(span, 'github.event') === 'workflow_dispatch';
  const attempt = own(span, 'github.run_attempt');
  if (attempt) tags.push(`github.run_attempt:${attempt}`);
  // previous_attempt needs the previous run's event UUID, which these exporters cannot know
  // (random trace IDs): its URL goes into a tag instead.
  const previous = htmlUrl(own(span, 'github.previous_attempt_url'));
  if (previous) tags.push(`github.previous_attempt_url:${previous}`);
  // `Queued` (run_started_at → first job's start) is queue time, not run time.
  const queued = children().find((c) => c.name === 'Queued' && c.attributes[JOB_ID] === undefined);
  if (queued) {
    out['ci.queue_time'] = durationMs(queued);
    out['ci.start'] = Math.max(hrMs(span.startTime), hrMs(queued.endTime));
  }
  const namespace = res(span, 'service.namespace');
  const authorName = own(span, 'github.head_commit.author.name');
  putGit(out, tags, {
    repository_url: namespace?.includes('/') ? `https://github.com/${namespace}` : repositoryFromRunUrl(url),
    sha: own(span, 'github.head_sha') ?? own(span, 'github.head_commit.id'),
    branch: own(span, 'github.head_branch') ?? own(span, 'github.head_ref'),
    author_email: own(span, 'github.head_commit.author.email') ?? own(span, 'github.author_email'),
    // The older exporter writes the e-mail into the name field.
    author_name: authorName?.includes('@') ? own(span, 'github.author_name') : authorName,
    author_time: own(span, 'github.head_commit.timestamp'),
    message: own(span, 'github.head_commit.message'),
  });
  putTags(out, tags);
  return { level: 'pipeline', values: out, context: url ? { vocabulary: 'github-actions', runUrl: url } : { vocabulary: 'github-actions' } };
}

function job(span: VocabSpan, lineage: Lineage): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  cicdTask(span, 'job', out, tags);
  out['ci.name'] = own(span, 'cicd.pipeline.task.name') ?? own(span, 'github.job.name') ?? span.name;
  const runUrl = lineage.vocab?.runUrl;
  const id = own(span, JOB_ID);
  const url = own(span, 'cicd.pipeline.task.run.url.full') ?? own(span, 'github.job.html_url') ?? (runUrl && id ? `${runUrl}/job/${id}` : undefined);
  put(out, 'ci.url', url);
  if (out['ci.status'] === undefined) putStatus(out, tags, 'job', resultStatus(own(span, 'github.job.conclusion')));
  put(out, 'ci.node.name', own(span, 'cicd.worker.name') ?? own(span, 'github.job.runner_name'));
  const labels = list(span.attributes['github.job.labels']);
  if (labels) out['ci.node.labels'] = labels;
  putTags(out, tags);
  return { level: 'job', values: out };
}

function step(span: VocabSpan): Decision {
  const out: CiValues = {};
  const tags: string[] = [];
  out['ci.name'] = own(span, STEP_NAME) ?? span.name;
  putStatus(out, tags, 'step', resultStatus(own(span, 'github.job.step.conclusion')));
  const n = own(span, 'github.job.step.number');
  if (n) tags.push(`github.job.step.number:${n}`);
  putTags(out, tags);
  return { level: 'step', values: out };
}

export const githubActions: Vocabulary = {
  name: 'github-actions',
  recognise: (span) => span.attributes[STEP_NAME] !== undefined || span.attributes[JOB_ID] !== undefined || span.attributes[RUN_ID] !== undefined,
  decide(span: VocabSpan, lineage: Lineage, children: Children): Decision {
    if (span.attributes[STEP_NAME] !== undefined) return step(span);
    if (span.attributes[JOB_ID] !== undefined) return job(span, lineage);
    if (!parentOf(span) || !lineage.pipeline) return pipeline(span, children);
    return {};
  },
};
