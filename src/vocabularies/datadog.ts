// Datadog's own tag names (dd-trace, datadog-ci: `git.commit.sha`, `ci.pipeline.url`, …) read as
// a fallback source for the contract's fields, on any span: below the vocabulary's values and
// the span's own `ci.*` keys. Git follows the same rule as everywhere: complete or tags.
import type { Attributes } from '@opentelemetry/api';
import type { Level } from '../mapping/fields.js';
import { list, put, putGit, str } from './common.js';
import type { CiValues } from './types.js';

/** Datadog tag → contract key, for every level. */
const ANY_LEVEL: ReadonlyArray<readonly [string, string]> = [
  ['git.commit.committer.email', 'ci.git.committer_email'],
  ['git.commit.committer.name', 'ci.git.committer_name'],
  ['ci.node.name', 'ci.node.name'],
  ['ci.workspace_path', 'ci.node.workspace'],
];

/** Datadog tag → contract key, by the event's level. */
const BY_LEVEL: Record<Level, ReadonlyArray<readonly [string, string]>> = {
  pipeline: [
    ['ci.pipeline.name', 'ci.name'],
    ['ci.pipeline.url', 'ci.url'],
    ['ci.pipeline.id', 'ci.pipeline_id'],
  ],
  stage: [['ci.stage.name', 'ci.name']],
  job: [
    ['ci.job.name', 'ci.name'],
    ['ci.job.url', 'ci.url'],
  ],
  step: [['ci.step.name', 'ci.name']],
};

/** Datadog's `ci.*` tag names read here (`git.*` ones are recognised by their prefix). */
export const DATADOG_CI_KEYS: ReadonlySet<string> = new Set([
  ...ANY_LEVEL.map(([from]) => from).filter((k) => k.startsWith('ci.')),
  ...Object.values(BY_LEVEL).flatMap((l) => l.map(([from]) => from)),
  'ci.node.labels',
]);

/** The contract's values Datadog's tag names give on these attributes, or undefined when none. */
export function datadogFallback(a: Attributes, level: Level): { values: CiValues; tags: string[] } | undefined {
  const out: CiValues = {};
  const tags: string[] = [];
  for (const [from, to] of ANY_LEVEL) put(out, to, str(a[from]));
  for (const [from, to] of BY_LEVEL[level]) put(out, to, str(a[from]));
  const labels = a['ci.node.labels'];
  if (labels !== undefined) {
    // datadog-ci writes the labels as a JSON array in a string.
    let parsed: unknown = labels;
    if (typeof labels === 'string' && labels.startsWith('[')) {
      try {
        parsed = JSON.parse(labels);
      } catch {
        parsed = labels;
      }
    }
    const l = list(Array.isArray(parsed) ? parsed.map(String) : typeof parsed === 'string' ? parsed : undefined);
    if (l) out['ci.node.labels'] = l;
  }
  const committed = str(a['git.commit.committer.date']);
  putGit(out, tags, {
    repository_url: str(a['git.repository_url']),
    sha: str(a['git.commit.sha']),
    branch: str(a['git.branch']),
    tag: str(a['git.tag']),
    author_email: str(a['git.commit.author.email']),
    author_name: str(a['git.commit.author.name']),
    author_time: str(a['git.commit.author.date']),
    commit_time: committed,
    message: str(a['git.commit.message']),
  });
  if (Object.keys(out).length === 0 && tags.length === 0) return undefined;
  return { values: out, tags };
}
