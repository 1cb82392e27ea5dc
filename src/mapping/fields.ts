// The attribute contract's one rule: `ci.` + a field's path in the API sets that field.
// This table is that rule made explicit: which paths exist, their JSON type, and the levels whose
// schema has them (from pipeline-event-request.schema.json). Anything not listed is not sent.

export type Level = 'pipeline' | 'stage' | 'job' | 'step';
export const LEVELS: readonly Level[] = ['pipeline', 'stage', 'job', 'step'];

/** A `ci.level` value as a level (case and spaces forgiven), or undefined. */
export function parseLevel(raw: unknown): Level | undefined {
  if (raw === 'step' || raw === 'job' || raw === 'stage' || raw === 'pipeline') return raw;
  if (raw === undefined || raw === null) return undefined;
  const value = String(raw).trim().toLowerCase();
  return (LEVELS as readonly string[]).includes(value) ? (value as Level) : undefined;
}

export type FieldType = 'string' | 'boolean' | 'integer' | 'string[]' | 'time';

export interface FieldSpec {
  /** Path in the resource, e.g. ['git', 'sha']. Envelope fields have `envelope: true`. */
  path: readonly [string] | readonly [string, string];
  type: FieldType;
  /** Bit set of the levels whose schema has this field. */
  levels: number;
  /** A field of the request's `attributes` beside `resource` (env, provider_name, service). */
  envelope?: boolean;
}

const P = 1;
const S = 2;
const J = 4;
const T = 8;
const ALL = P | S | J | T;
export const LEVEL_BIT: Record<Level, number> = { pipeline: P, stage: S, job: J, step: T };

const GIT = [
  'repository_url',
  'sha',
  'branch',
  'tag',
  'author_email',
  'author_name',
  'author_time',
  'committer_email',
  'committer_name',
  'commit_time',
  'default_branch',
  'message',
];

function spec(key: string, type: FieldType, levels: number, envelope = false): [string, FieldSpec] {
  const parts = key.split('.');
  const path = (parts.length === 1 ? [parts[0]] : [parts[0], parts[1]]) as FieldSpec['path'];
  return [`ci.${key}`, envelope ? { path, type, levels, envelope } : { path, type, levels }];
}

/** `ci.<path>` → how to read it. `ci.parameters.<key>` is handled apart (any key). */
export const FIELDS: ReadonlyMap<string, FieldSpec> = new Map<string, FieldSpec>([
  spec('name', 'string', ALL),
  spec('status', 'string', ALL),
  spec('start', 'time', ALL),
  spec('end', 'time', ALL),
  spec('url', 'string', P | J | T),
  spec('unique_id', 'string', P),
  spec('id', 'string', ALL), // for a pipeline, an alias of unique_id
  spec('pipeline_id', 'string', P),
  spec('partial_retry', 'boolean', P),
  spec('is_manual', 'boolean', P),
  spec('is_resumed', 'boolean', P),
  spec('queue_time', 'integer', P | S | J),
  spec('dependencies', 'string[]', S | J),
  spec('pipeline_unique_id', 'string', S | J | T),
  spec('pipeline_name', 'string', S | J | T),
  spec('stage_id', 'string', J | T),
  spec('stage_name', 'string', J | T),
  spec('job_id', 'string', T),
  spec('job_name', 'string', T),
  spec('tags', 'string[]', ALL),
  spec('metrics', 'string[]', ALL),
  spec('node.hostname', 'string', ALL),
  spec('node.name', 'string', ALL),
  spec('node.workspace', 'string', ALL),
  spec('node.labels', 'string[]', ALL),
  spec('error.domain', 'string', ALL),
  spec('error.type', 'string', ALL),
  spec('error.message', 'string', ALL),
  spec('error.stack', 'string', ALL),
  spec('parent_pipeline.id', 'string', P),
  spec('parent_pipeline.url', 'string', P),
  spec('previous_attempt.id', 'string', P),
  spec('previous_attempt.url', 'string', P),
  ...GIT.map((g) => spec(`git.${g}`, 'string', ALL)),
  spec('env', 'string', ALL, true),
  spec('provider_name', 'string', ALL, true),
  spec('service', 'string', ALL, true),
]);

export const PARAMETERS_PREFIX = 'ci.parameters.';
export const LEVEL_ATTRIBUTE = 'ci.level';
