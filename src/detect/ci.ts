// CI provider environment → pipeline, job, node and git values. Pure: a function of an env object,
// so tests feed fixture environments. The table is ours (see the README's "Dependencies" for why
// not env-ci or ci-info); each provider's variable names and formats are those its docs give.
import type { GitInfo } from '../mapping/transform.js';

export type CiProvider = 'github' | 'gitlab' | 'jenkins' | 'circleci' | 'buildkite' | 'azurepipelines' | 'bitbucket';

export interface DetectedCi {
  provider: CiProvider;
  /** Pipeline events: `name`, `url`, `pipeline_id` (the provider's run ID). */
  pipeline: { name?: string; url?: string; pipeline_id?: string };
  /** Job events: the CI job this process runs in. */
  job: { name?: string; url?: string };
  /** Job and step events: `node.name`, `node.workspace`. */
  node: { name?: string; workspace?: string };
  /** The commit the provider says it builds (repository URL not yet scrubbed: see detect/index.ts). */
  git: GitInfo;
}

type Env = Record<string, string | undefined>;

/** The value, trimmed, or undefined when unset or blank (CI systems export empty variables). */
function v(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined) return undefined;
  const s = raw.trim();
  return s === '' ? undefined : s;
}

/** `refs/heads/x`, `origin/x`, `refs/tags/v1`, `tags/v1` → branch or tag. */
export function refToGit(ref: string | undefined): { branch?: string; tag?: string } {
  if (ref === undefined) return {};
  if (ref.startsWith('refs/tags/')) return { tag: ref.slice('refs/tags/'.length) };
  if (ref.startsWith('tags/')) return { tag: ref.slice('tags/'.length) };
  if (ref.startsWith('origin/tags/')) return { tag: ref.slice('origin/tags/'.length) };
  // A pull request's merge ref names no branch; the provider's PR variables do.
  if (ref.startsWith('refs/pull/') || ref.startsWith('refs/merge-requests/')) return {};
  let branch = ref;
  if (branch.startsWith('refs/heads/')) branch = branch.slice('refs/heads/'.length);
  else if (branch.startsWith('origin/')) branch = branch.slice('origin/'.length);
  return branch === '' ? {} : { branch };
}

/** Drops undefined members, so that later layers' spreads do not erase earlier values. */
function defined<T extends Record<string, string | undefined>>(o: T): { [K in keyof T]?: string } {
  const out: Record<string, string> = {};
  for (const k in o) if (o[k] !== undefined) out[k] = o[k] as string;
  return out as { [K in keyof T]?: string };
}

/** `Jane Doe <jane@example.com>` → name and email (GitLab's CI_COMMIT_AUTHOR). */
function nameAndEmail(s: string | undefined): { name?: string; email?: string } {
  if (s === undefined) return {};
  const m = /^\s*(.*?)\s*<([^<>\s]+@[^<>\s]+)>\s*$/.exec(s);
  if (!m) return s.includes('@') ? { email: s } : { name: s };
  return m[1] ? { name: m[1], email: m[2] } : { email: m[2] };
}

/** `~/project` → `$HOME/project` (CircleCI's CIRCLE_WORKING_DIRECTORY). */
function untilde(path: string | undefined, env: Env): string | undefined {
  if (path === undefined || (path !== '~' && !path.startsWith('~/'))) return path;
  const home = v(env, 'HOME');
  return home === undefined ? path : home.replace(/\/+$/, '') + path.slice(1);
}

function github(env: Env): DetectedCi {
  const server = (v(env, 'GITHUB_SERVER_URL') ?? 'https://github.com').replace(/\/+$/, '');
  const repo = v(env, 'GITHUB_REPOSITORY');
  const runId = v(env, 'GITHUB_RUN_ID');
  const attempt = v(env, 'GITHUB_RUN_ATTEMPT');
  let url: string | undefined;
  if (repo && runId) url = `${server}/${repo}/actions/runs/${runId}${attempt && attempt !== '1' ? `/attempts/${attempt}` : ''}`;
  // On pull_request events GITHUB_REF is refs/pull/N/merge; GITHUB_HEAD_REF names the branch.
  const headRef = v(env, 'GITHUB_HEAD_REF');
  const ref = headRef ? { branch: headRef } : refToGit(v(env, 'GITHUB_REF'));
  return {
    provider: 'github',
    pipeline: defined({ name: v(env, 'GITHUB_WORKFLOW'), url, pipeline_id: runId }),
    // GitHub exposes the job's key (GITHUB_JOB) but not the numeric job ID its URL needs.
    job: defined({ name: v(env, 'GITHUB_JOB') }),
    node: defined({ name: v(env, 'RUNNER_NAME'), workspace: v(env, 'GITHUB_WORKSPACE') }),
    git: defined({ repository_url: repo ? `${server}/${repo}.git` : undefined, sha: v(env, 'GITHUB_SHA'), ...ref }),
  };
}

function gitlab(env: Env): DetectedCi {
  const author = nameAndEmail(v(env, 'CI_COMMIT_AUTHOR'));
  const tag = v(env, 'CI_COMMIT_TAG');
  // Merge request pipelines have no CI_COMMIT_BRANCH; CI_COMMIT_REF_NAME is a branch or a tag.
  const branch = tag ? undefined : (v(env, 'CI_COMMIT_BRANCH') ?? v(env, 'CI_MERGE_REQUEST_SOURCE_BRANCH_NAME') ?? v(env, 'CI_COMMIT_REF_NAME'));
  return {
    provider: 'gitlab',
    pipeline: defined({ name: v(env, 'CI_PROJECT_PATH'), url: v(env, 'CI_PIPELINE_URL'), pipeline_id: v(env, 'CI_PIPELINE_ID') }),
    job: defined({ name: v(env, 'CI_JOB_NAME'), url: v(env, 'CI_JOB_URL') }),
    node: defined({ name: v(env, 'CI_RUNNER_DESCRIPTION') ?? v(env, 'CI_RUNNER_ID'), workspace: v(env, 'CI_PROJECT_DIR') }),
    git: defined({
      // CI_REPOSITORY_URL carries the job token (gitlab-ci-token:…@): scrubbed in detect/index.ts.
      repository_url: v(env, 'CI_REPOSITORY_URL') ?? (v(env, 'CI_PROJECT_URL') ? `${v(env, 'CI_PROJECT_URL')}.git` : undefined),
      sha: v(env, 'CI_COMMIT_SHA'),
      branch,
      tag,
      author_name: author.name,
      author_email: author.email,
      commit_time: v(env, 'CI_COMMIT_TIMESTAMP'),
      message: v(env, 'CI_COMMIT_MESSAGE'),
    }),
  };
}

function jenkins(env: Env): DetectedCi {
  // Multibranch jobs are named `<pipeline>/<branch>`: the branch is not part of the pipeline's name.
  let name = v(env, 'JOB_NAME');
  const branchName = v(env, 'BRANCH_NAME');
  if (name && branchName) {
    for (const suffix of [`/${branchName}`, `/${encodeURIComponent(branchName)}`]) {
      if (name.endsWith(suffix) && name.length > suffix.length) {
        name = name.slice(0, -suffix.length);
        break;
      }
    }
  }
  return {
    provider: 'jenkins',
    pipeline: defined({ name, url: v(env, 'BUILD_URL'), pipeline_id: v(env, 'BUILD_TAG') }),
    // A Jenkins build is one pipeline; its stages live in the Jenkinsfile, not the environment.
    job: {},
    node: defined({ name: v(env, 'NODE_NAME'), workspace: v(env, 'WORKSPACE') }),
    git: defined({
      repository_url: v(env, 'GIT_URL') ?? v(env, 'GIT_URL_1'),
      sha: v(env, 'GIT_COMMIT'),
      ...refToGit(v(env, 'GIT_BRANCH') ?? branchName),
    }),
  };
}

function circleci(env: Env): DetectedCi {
  const workflow = v(env, 'CIRCLE_WORKFLOW_ID');
  const tag = v(env, 'CIRCLE_TAG');
  return {
    provider: 'circleci',
    pipeline: defined({
      name: v(env, 'CIRCLE_PROJECT_REPONAME'),
      url: workflow ? `https://app.circleci.com/pipelines/workflows/${workflow}` : undefined,
      pipeline_id: workflow,
    }),
    job: defined({ name: v(env, 'CIRCLE_JOB'), url: v(env, 'CIRCLE_BUILD_URL') }),
    node: defined({ workspace: untilde(v(env, 'CIRCLE_WORKING_DIRECTORY'), env) }),
    git: defined({
      repository_url: v(env, 'CIRCLE_REPOSITORY_URL'),
      sha: v(env, 'CIRCLE_SHA1'),
      tag,
      branch: tag ? undefined : v(env, 'CIRCLE_BRANCH'),
    }),
  };
}

function buildkite(env: Env): DetectedCi {
  const buildUrl = v(env, 'BUILDKITE_BUILD_URL');
  const jobId = v(env, 'BUILDKITE_JOB_ID');
  const tag = v(env, 'BUILDKITE_TAG');
  return {
    provider: 'buildkite',
    pipeline: defined({ name: v(env, 'BUILDKITE_PIPELINE_SLUG'), url: buildUrl, pipeline_id: v(env, 'BUILDKITE_BUILD_ID') }),
    job: defined({ name: v(env, 'BUILDKITE_LABEL'), url: buildUrl && jobId ? `${buildUrl}#${jobId}` : undefined }),
    node: defined({ name: v(env, 'BUILDKITE_AGENT_NAME'), workspace: v(env, 'BUILDKITE_BUILD_CHECKOUT_PATH') }),
    git: defined({
      repository_url: v(env, 'BUILDKITE_REPO'),
      sha: v(env, 'BUILDKITE_COMMIT'),
      tag,
      branch: tag ? undefined : v(env, 'BUILDKITE_BRANCH'),
      author_name: v(env, 'BUILDKITE_BUILD_AUTHOR'),
      author_email: v(env, 'BUILDKITE_BUILD_AUTHOR_EMAIL'),
      message: v(env, 'BUILDKITE_MESSAGE'),
    }),
  };
}

function azure(env: Env): DetectedCi {
  const server = v(env, 'SYSTEM_TEAMFOUNDATIONSERVERURI');
  const project = v(env, 'SYSTEM_TEAMPROJECTID');
  const buildId = v(env, 'BUILD_BUILDID');
  const jobId = v(env, 'SYSTEM_JOBID');
  const taskId = v(env, 'SYSTEM_TASKINSTANCEID');
  const url = server && project && buildId ? `${server.replace(/\/*$/, '/')}${project}/_build/results?buildId=${buildId}` : undefined;
  // In pull request builds the SYSTEM_PULLREQUEST_* variables name the source, not the merge.
  const ref = v(env, 'SYSTEM_PULLREQUEST_SOURCEBRANCH') ?? v(env, 'BUILD_SOURCEBRANCH');
  return {
    provider: 'azurepipelines',
    pipeline: defined({ name: v(env, 'BUILD_DEFINITIONNAME'), url, pipeline_id: buildId }),
    job: defined({
      name: v(env, 'SYSTEM_JOBDISPLAYNAME'),
      url: url && jobId ? `${url}&view=logs&j=${jobId}${taskId ? `&t=${taskId}` : ''}` : undefined,
    }),
    node: defined({ name: v(env, 'AGENT_NAME'), workspace: v(env, 'BUILD_SOURCESDIRECTORY') }),
    git: defined({
      repository_url: v(env, 'SYSTEM_PULLREQUEST_SOURCEREPOSITORYURI') ?? v(env, 'BUILD_REPOSITORY_URI'),
      sha: v(env, 'SYSTEM_PULLREQUEST_SOURCECOMMITID') ?? v(env, 'BUILD_SOURCEVERSION'),
      ...refToGit(ref),
      // BUILD_REQUESTEDFOR* name who queued the build, not the commit's author: not used.
      message: v(env, 'BUILD_SOURCEVERSIONMESSAGE'),
    }),
  };
}

function bitbucket(env: Env): DetectedCi {
  const repo = v(env, 'BITBUCKET_REPO_FULL_NAME');
  const build = v(env, 'BITBUCKET_BUILD_NUMBER');
  const step = v(env, 'BITBUCKET_STEP_UUID');
  const url = repo && build ? `https://bitbucket.org/${repo}/pipelines/results/${build}` : undefined;
  const tag = v(env, 'BITBUCKET_TAG');
  return {
    provider: 'bitbucket',
    // BITBUCKET_PIPELINE_UUID comes in braces: {1b2c…}.
    pipeline: defined({ name: repo, url, pipeline_id: v(env, 'BITBUCKET_PIPELINE_UUID')?.replace(/^\{|\}$/g, '') }),
    // A step is Bitbucket's job; it exposes the step's UUID, not its name.
    job: defined({ url: url && step ? `${url}/steps/${encodeURIComponent(step)}` : undefined }),
    node: defined({ workspace: v(env, 'BITBUCKET_CLONE_DIR') }),
    git: defined({
      repository_url: v(env, 'BITBUCKET_GIT_HTTP_ORIGIN') ?? v(env, 'BITBUCKET_GIT_SSH_ORIGIN'),
      sha: v(env, 'BITBUCKET_COMMIT'),
      tag,
      branch: tag ? undefined : v(env, 'BITBUCKET_BRANCH'),
    }),
  };
}

/** Which provider's environment this is: its marker variable, checked in this order. */
const PROVIDERS: ReadonlyArray<readonly [test: (env: Env) => boolean, read: (env: Env) => DetectedCi]> = [
  [(e) => v(e, 'GITHUB_ACTIONS') !== undefined, github],
  [(e) => v(e, 'GITLAB_CI') !== undefined, gitlab],
  [(e) => v(e, 'BUILDKITE') !== undefined, buildkite],
  [(e) => v(e, 'CIRCLECI') !== undefined, circleci],
  [(e) => v(e, 'TF_BUILD') !== undefined, azure],
  [(e) => v(e, 'BITBUCKET_COMMIT') !== undefined || v(e, 'BITBUCKET_BUILD_NUMBER') !== undefined, bitbucket],
  // Last: Jenkins agents often run other tools' builds, and JENKINS_URL leaks into them.
  [(e) => v(e, 'JENKINS_URL') !== undefined && (v(e, 'BUILD_URL') !== undefined || v(e, 'BUILD_TAG') !== undefined), jenkins],
];

/** The CI provider this environment belongs to and what it says, or undefined outside CI. */
export function detectCi(env: Env): DetectedCi | undefined {
  for (const [test, read] of PROVIDERS) if (test(env)) return read(env);
  return undefined;
}
