// The fields an event takes unchanged from its labelled ancestors: the links its level has
// (pipeline_unique_id, pipeline_name, stage_*, job_*) and, when it has no git of its own, its
// pipeline's git. They are the same for every sibling, so siblings get the same object, and the
// serializer stringifies it once (see serialization/event-json.ts).
import type { Level } from './fields.js';
import type { GitInfo, Lineage } from './transform.js';

export interface SharedFields {
  pipeline_unique_id?: string;
  pipeline_name?: string;
  stage_id?: string;
  stage_name?: string;
  job_id?: string;
  job_name?: string;
  /** Removed (by validation) when this git cannot be sent: every sibling then goes without. */
  git?: GitInfo;
}

/**
 * The last shared object built for each level. The store resolves a parent's waiting children
 * one after the other, so consecutive events of a level usually share lineage and git.
 */
const last: Record<Level, { lineage: Lineage; git: GitInfo | undefined; shared: SharedFields | undefined } | undefined> = {
  pipeline: undefined,
  stage: undefined,
  job: undefined,
  step: undefined,
};

/** The links `level` takes from `inherited`, plus `git` if given; undefined when there is none. */
export function sharedFields(inherited: Lineage, level: Level, git: GitInfo | undefined): SharedFields | undefined {
  const memo = last[level];
  if (memo && memo.lineage === inherited && memo.git === git) return memo.shared;
  const s: SharedFields = {};
  let any = false;
  if (level !== 'pipeline') {
    if (inherited.pipeline) {
      s.pipeline_unique_id = inherited.pipeline.unique_id;
      s.pipeline_name = inherited.pipeline.name;
      any = true;
    }
    if (level !== 'stage') {
      if (inherited.stage) {
        s.stage_id = inherited.stage.id;
        s.stage_name = inherited.stage.name;
        any = true;
      }
      if (level === 'step' && inherited.job) {
        s.job_id = inherited.job.id;
        s.job_name = inherited.job.name;
        any = true;
      }
    }
  }
  if (git) {
    s.git = git;
    any = true;
  }
  const shared = any ? s : undefined;
  last[level] = { lineage: inherited, git, shared };
  return shared;
}
