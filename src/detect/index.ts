// The environment a build runs in: what its CI provider's variables say (ci.ts) layered over what
// the local repository says (git.ts), with credentials removed. The exporter uses it as the layer
// below the spans' and resource's `ci.*` attributes (see events.ts); `run` can call it directly.
import type { GitInfo } from '../mapping/transform.js';
import { scrubUrl } from '../mapping/scrub.js';
import { detectCi, type CiProvider } from './ci.js';
import { detectGit, GIT_TIMEOUT_MS } from './git.js';

export { detectGit } from './git.js';

export type { CiProvider } from './ci.js';
export { clearGitCache } from './git.js';

export interface DetectedEnvironment {
  /** The CI provider whose variables were found, if any. */
  provider?: CiProvider;
  /** For pipeline events. */
  pipeline: { name?: string; url?: string; pipeline_id?: string };
  /** For job events: the CI job this process runs in. */
  job: { name?: string; url?: string };
  /** For job and step events. */
  node: { name?: string; workspace?: string };
  /** The commit being built (may be partial; see sendableGit). Repository URL without credentials. */
  git?: GitInfo;
}

export interface DetectOptions {
  /** Directory whose repository `git` reads. Default: process.cwd(). */
  cwd?: string;
  /** Ask `git` about the local repository. Default true. */
  git?: boolean;
  /** Budget of the git runs. Default 1000 ms. */
  gitTimeoutMs?: number;
}

/** Fields that describe one commit: only taken from local git when it is the commit CI builds. */
const COMMIT_FIELDS = ['author_name', 'author_email', 'author_time', 'committer_name', 'committer_email', 'commit_time', 'message'];

/**
 * What the CI provider's variables in `env` say (no `git` run): pure and synchronous. Its `git`
 * is the provider's, with credentials removed.
 */
export function detectCiEnvironment(env: NodeJS.ProcessEnv = process.env): DetectedEnvironment {
  const out: DetectedEnvironment = { pipeline: {}, job: {}, node: {} };
  try {
    const ci = detectCi(env);
    if (!ci) return out;
    out.provider = ci.provider;
    out.pipeline = { ...ci.pipeline };
    out.job = { ...ci.job };
    out.node = { ...ci.node };
    if (out.pipeline.url !== undefined) out.pipeline.url = scrubUrl(out.pipeline.url);
    if (out.job.url !== undefined) out.job.url = scrubUrl(out.job.url);
    const git = mergeDetectedGit({}, ci.git);
    if (git) out.git = git;
  } catch {
    // Detection is a convenience: nothing it does may fail the build.
  }
  return out;
}

/**
 * detectCiEnvironment(env), with the local repository's commit (from `git`, run once per process
 * and directory, at most ~1 s) beneath the provider's git values. Never rejects: what cannot be
 * detected is simply absent.
 */
export async function detectEnvironment(env: NodeJS.ProcessEnv = process.env, options: DetectOptions = {}): Promise<DetectedEnvironment> {
  const out = detectCiEnvironment(env);
  if (options.git === false) return out;
  const local = await detectGit(options.cwd ?? process.cwd(), env, options.gitTimeoutMs ?? GIT_TIMEOUT_MS);
  return withLocalGit(out, local);
}

/** `detected` with `local` git beneath its provider git (a new object; `detected` is unchanged). */
export function withLocalGit(detected: DetectedEnvironment, local: GitInfo): DetectedEnvironment {
  const out: DetectedEnvironment = { ...detected };
  try {
    const git = mergeDetectedGit(local, detected.git ?? {});
    if (git) out.git = git;
  } catch {
    // As above: never fatal.
  }
  return out;
}

/** The provider's values over the local repository's; local commit details only for the same commit. */
export function mergeDetectedGit(local: GitInfo, ci: GitInfo): GitInfo | undefined {
  const git: GitInfo = { ...local };
  if (ci.sha !== undefined && local.sha !== undefined && ci.sha.toLowerCase() !== local.sha.toLowerCase()) {
    // The checkout is not the commit CI says it builds: its author and message would be wrong.
    for (const k of COMMIT_FIELDS) delete git[k];
    delete git.branch;
    delete git.tag;
  }
  if (ci.branch !== undefined || ci.tag !== undefined) {
    delete git.branch;
    delete git.tag;
  }
  Object.assign(git, ci);
  if (git.repository_url !== undefined) git.repository_url = scrubUrl(git.repository_url);
  return Object.keys(git).length > 0 ? git : undefined;
}

/**
 * Whether detected git can be sent on its own: Datadog requires repository_url, sha and
 * author_email with git, and validation would otherwise leave it out with a message on every run.
 */
export function sendableGit(git: GitInfo | undefined): git is GitInfo {
  return git !== undefined && git.repository_url !== undefined && git.author_email !== undefined && /^[0-9a-fA-F]{40}$/.test(git.sha ?? '');
}
