// Span → pipeline event resource. Pure: everything it needs comes in as arguments (the span, its
// parsed `ci.*` attributes, the lineage inherited from labelled ancestors, the defaults), so it
// can be tested with plain objects.
import { SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import type { DetectedEnvironment } from '../detect/index.js';
import type { CiAttributes } from './attributes.js';
import { LEVEL_BIT, type FieldSpec, type Level } from './fields.js';
import { spanIdToUuid, traceIdToUuid } from './ids.js';
import { sharedFields, type SharedFields } from './shared.js';
import { RUNNING_LEVELS, normalizeStatus } from './status.js';
import { hrTimeToMs, hrTimeToRfc3339, msToRfc3339 } from './time.js';
import type { VocabContext } from '../vocabularies/types.js';

/** The parts of a ReadableSpan the mapping reads; a plain object can stand in for tests. */
export interface SpanData {
  name: string;
  spanContext(): { traceId: string; spanId: string };
  parentSpanContext?: { spanId: string; isRemote?: boolean } | undefined;
  /** SDK 1.x spans name their parent this way (no parentSpanContext). */
  parentSpanId?: string | undefined;
  startTime: HrTime;
  endTime: HrTime;
  status: { code: SpanStatusCode; message?: string };
  attributes: Attributes;
  events: ReadonlyArray<{ name: string; attributes?: Attributes }>;
  resource: { attributes: Attributes };
}

export type GitInfo = Record<string, string>;

/** What a labelled span passes down to its descendants. */
export interface Lineage {
  pipeline?: { unique_id: string; name: string };
  stage?: { id: string; name: string };
  job?: { id: string; name: string };
  git?: GitInfo;
  env?: string;
  provider_name?: string;
  service?: string;
  /** What another tool's vocabulary passes down (run URL, branch tags, pending queue time): src/vocabularies. */
  vocab?: VocabContext;
}

export const EMPTY_LINEAGE: Lineage = Object.freeze({}) as Lineage;

/** Option- and environment-level values, the weakest layer. */
export interface Defaults {
  env?: string;
  provider_name: string;
  service?: string;
  /** From the resource's host.name. */
  hostname?: string;
  /** Detected from the CI provider's environment and git (detect/): below every attribute. */
  detected?: DetectedEnvironment;
}

export interface Envelope {
  env?: string;
  provider_name?: string;
  service?: string;
}

export type Resource = Record<string, unknown> & { level: Level; name: string; status: string };

export interface Mapped {
  /** From mapSpan, the whole resource; from mapSpanParts, all of it but `shared`. */
  resource: Resource;
  /** mapSpanParts only: the fields the event shares with its siblings (no key of `resource`). */
  shared?: SharedFields | undefined;
  envelope: Envelope;
  /** Passed to this span's descendants. */
  lineage: Lineage;
  /** Epoch ms of end (or start when running): the 18-hour rule is counted from it. */
  timeMs: number;
  startMs: number;
}

const EXCEPTION = 'exception';

/** The span's parent, from an SDK 2.x span (parentSpanContext) or an SDK 1.x one (parentSpanId). */
export function parentOf(span: SpanData): { spanId: string; isRemote?: boolean } | undefined {
  const p = span.parentSpanContext;
  // OTLP and some bridges mark a root with an empty or all-zero parent ID.
  if (p) return p.spanId && p.spanId !== INVALID_SPAN_ID ? p : undefined;
  const id = span.parentSpanId;
  return id && id !== INVALID_SPAN_ID ? { spanId: id } : undefined;
}

const INVALID_SPAN_ID = '0000000000000000';

/** Span → the event's whole resource: `shared` merged into it (after its own fields). */
export function mapSpan(...args: Parameters<typeof mapSpanParts>): Mapped {
  const m = mapSpanParts(...args);
  if (m.shared) Object.assign(m.resource, m.shared);
  m.shared = undefined;
  return m;
}

/**
 * Span → the event's resource in two parts: its own fields, and the fields it takes unchanged
 * from its ancestors (`shared`, one object for all its siblings). The exporter keeps them apart
 * so that each span's serialization stringifies its own fields only.
 */
export function mapSpanParts(
  span: SpanData,
  level: Level,
  spanAttrs: CiAttributes,
  resourceAttrs: CiAttributes,
  inherited: Lineage,
  defaults: Defaults,
): Mapped {
  const bit = LEVEL_BIT[level];
  const r: Record<string, unknown> = { level };
  const fromResource = resourceLayer(r, resourceAttrs, bit);
  const own = applyValues(r, spanAttrs, bit);
  if (resourceAttrs.parameters && spanAttrs.parameters) {
    r.parameters = { ...resourceAttrs.parameters, ...spanAttrs.parameters };
  } else if (resourceAttrs.parameters || spanAttrs.parameters) {
    // One side only: no copy (100,000 parameters are one value). Nothing changes it afterwards.
    r.parameters = resourceAttrs.parameters ?? spanAttrs.parameters;
  }

  if (defaults.detected) applyDetected(r, level, defaults.detected, inherited);

  const { traceId, spanId } = span.spanContext();
  const name = typeof r.name === 'string' ? r.name : span.name;
  r.name = name;

  // IDs: explicit attributes win; see ids.ts for the derived scheme.
  let ownId: string;
  if (level === 'pipeline') {
    if (typeof r.unique_id !== 'string') {
      r.unique_id = typeof r.id === 'string' ? r.id : parentOf(span) ? spanIdToUuid(traceId, spanId) : traceIdToUuid(traceId);
    }
    delete r.id;
    ownId = r.unique_id as string;
    if (r.partial_retry === undefined) r.partial_retry = false;
  } else {
    if (typeof r.id !== 'string') r.id = spanIdToUuid(traceId, spanId);
    ownId = r.id as string;
  }

  // Links to ancestors: the hierarchy decides (they go in `shared`, below); explicit attributes
  // only fill what it cannot (a span whose ancestors live in another process).
  if (level !== 'pipeline') {
    if (inherited.pipeline) dropExplicit(r, 'pipeline_unique_id', 'pipeline_name');
    if (level !== 'stage') {
      if (inherited.stage) dropExplicit(r, 'stage_id', 'stage_name');
      if (level === 'step' && inherited.job) dropExplicit(r, 'job_id', 'job_name');
    }
  }

  // Status and error.
  r.status = typeof r.status === 'string' ? normalizeStatus(r.status) : span.status.code === SpanStatusCode.ERROR ? 'error' : 'success';
  if (r.status === 'error' || span.status.code === SpanStatusCode.ERROR) deriveError(r, span);

  // Times. Each read once: a held span's view makes a new array per read.
  const spanStart = span.startTime;
  const startMs = typeof r.start === 'number' ? r.start : hrTimeToMs(spanStart);
  r.start = typeof r.start === 'number' ? msToRfc3339(r.start) : hrTimeToRfc3339(spanStart);
  let endMs: number;
  if (r.status === 'running' && RUNNING_LEVELS.has(level)) {
    // A running event has no end yet; an explicit ci.end on it is meaningless.
    delete r.end;
    endMs = startMs;
  } else {
    if (typeof r.end === 'number') {
      endMs = r.end;
      r.end = msToRfc3339(r.end);
    } else {
      const spanEnd = span.endTime;
      endMs = hrTimeToMs(spanEnd);
      r.end = hrTimeToRfc3339(spanEnd);
    }
  }

  // Host: resource host.name unless ci.node.hostname says otherwise.
  if (defaults.hostname !== undefined) {
    const node = (r.node as Record<string, unknown> | undefined) ?? {};
    if (node.hostname === undefined) {
      node.hostname = defaults.hostname;
      r.node = node;
    }
  }

  // Git, env, provider, service: own > inherited from ancestors > resource > options/environment.
  // Detected git is the weakest layer; an ancestor's git already has it beneath.
  // The common case first, without mergeGit's loops: the span adds nothing to the git it
  // inherits (mergeGit would return the inherited object too).
  const git =
    inherited.git !== undefined && own.git === undefined && (fromResource.git === undefined || fromResource.git === inherited.git)
      ? inherited.git
      : mergeGit(inherited.git ? undefined : detectedGitUnder(defaults.detected?.git, fromResource.git, own.git), fromResource.git, inherited.git, own.git);
  // The ancestors' git object itself (nothing layered on it) is shared; anything else is own.
  const gitShared = git !== undefined && git === inherited.git;
  if (git && !gitShared) r.git = git;
  const shared = sharedFields(inherited, level, gitShared ? git : undefined);
  // Defaults stay out of the lineage: they apply to every span anyway, and keeping them out
  // lets a descendant's resource-level value beat them.
  const env = own.envelope.env ?? inherited.env ?? fromResource.envelope.env;
  const provider = own.envelope.provider_name ?? inherited.provider_name ?? fromResource.envelope.provider_name;
  const service = own.envelope.service ?? inherited.service ?? fromResource.envelope.service;
  const envelope = envelopeOf(provider ?? defaults.provider_name, env ?? defaults.env, service ?? defaults.service);

  // A step passes down what it inherited unless it overrides something: no copy per step.
  if (
    level === 'step' &&
    (git === inherited.git || git === undefined) &&
    env === inherited.env &&
    provider === inherited.provider_name &&
    service === inherited.service &&
    (inherited.pipeline || typeof r.pipeline_unique_id !== 'string')
  ) {
    return { resource: r as Resource, shared, envelope, lineage: inherited, timeMs: endMs, startMs };
  }
  const lineage: Lineage = { ...inherited };
  if (git) lineage.git = git;
  if (env !== undefined) lineage.env = env;
  if (provider !== undefined) lineage.provider_name = provider;
  if (service !== undefined) lineage.service = service;
  switch (level) {
    case 'pipeline':
      lineage.pipeline = { unique_id: ownId, name };
      delete lineage.stage;
      delete lineage.job;
      break;
    case 'stage':
      lineage.stage = { id: ownId, name };
      delete lineage.job;
      break;
    case 'job':
      lineage.job = { id: ownId, name };
      break;
    case 'step':
      break;
  }
  // A span that carries its own pipeline link (its ancestors are in another process) passes it on.
  if (!lineage.pipeline && typeof r.pipeline_unique_id === 'string' && typeof r.pipeline_name === 'string') {
    lineage.pipeline = { unique_id: r.pipeline_unique_id, name: r.pipeline_name };
  }
  // Likewise its explicit stage and job links (a job or step started in a child process).
  if (!lineage.stage && level !== 'pipeline' && level !== 'stage' && typeof r.stage_id === 'string' && typeof r.stage_name === 'string') {
    lineage.stage = { id: r.stage_id, name: r.stage_name };
  }
  if (!lineage.job && level === 'step' && typeof r.job_id === 'string' && typeof r.job_name === 'string') {
    lineage.job = { id: r.job_id, name: r.job_name };
  }

  return { resource: r as Resource, shared, envelope, lineage, timeMs: endMs, startMs };
}

/**
 * Detected CI values where attributes gave none (attributes always win; detected values win over
 * derived ones such as the span's name). Pipeline: name, url, pipeline_id. Job: url; its name only
 * for a job with no labelled ancestor in this process (the process *is* that CI job), so jobs a
 * build tool creates inside it keep their own names. Job and step: node name and workspace.
 */
function applyDetected(r: Record<string, unknown>, level: Level, d: DetectedEnvironment, inherited: Lineage): void {
  if (level === 'pipeline') {
    if (r.name === undefined && d.pipeline.name !== undefined) r.name = d.pipeline.name;
    if (r.url === undefined && d.pipeline.url !== undefined) r.url = d.pipeline.url;
    if (r.pipeline_id === undefined && d.pipeline.pipeline_id !== undefined) r.pipeline_id = d.pipeline.pipeline_id;
    return;
  }
  if (level === 'stage') return;
  if (level === 'job') {
    if (r.url === undefined && d.job.url !== undefined) r.url = d.job.url;
    if (r.name === undefined && d.job.name !== undefined && !inherited.pipeline && !inherited.stage && !inherited.job) r.name = d.job.name;
  }
  if (d.node.name !== undefined || d.node.workspace !== undefined) {
    const node = (r.node as Record<string, unknown> | undefined) ?? {};
    if (node.name === undefined && d.node.name !== undefined) node.name = d.node.name;
    if (node.workspace === undefined && d.node.workspace !== undefined) node.workspace = d.node.workspace;
    r.node = node;
  }
}

/** Explicit link attributes give way to the hierarchy's (rare: a delete makes `r` slower). */
function dropExplicit(r: Record<string, unknown>, id: string, name: string): void {
  if (r[id] !== undefined) delete r[id];
  if (r[name] !== undefined) delete r[name];
}

/**
 * The last envelope built: nearly every event has the same one, so it is one object for them all
 * (nothing changes an envelope once built; the serializer caches its JSON by value anyway).
 */
let lastEnvelope: Envelope | undefined;

function envelopeOf(provider_name: string, env: string | undefined, service: string | undefined): Envelope {
  const last = lastEnvelope;
  if (last !== undefined && last.provider_name === provider_name && last.env === env && last.service === service) return last;
  const envelope: Envelope = { provider_name };
  if (env !== undefined) envelope.env = env;
  if (service !== undefined) envelope.service = service;
  lastEnvelope = envelope;
  return envelope;
}

/** What a layer of attributes says apart from the resource's fields: git and the envelope. */
interface Layer {
  git?: GitInfo;
  envelope: Envelope;
}

/**
 * A resource's git and envelope, per level: one object each for all the resource's spans. Built
 * anew per span, a resource's git (one CI process per build puts `ci.git.*` there, so every span
 * carries it) was a new object for mergeGit to compare and for the collector to sweep; the same
 * object is what the ancestors' git already is, so mergeGit returns it at once. Objects a
 * validation fixes in place are fixed the same way for every span (validate.ts, once per git).
 */
const resourceLayers = new WeakMap<CiAttributes, Array<Layer | undefined>>();

function resourceLayer(r: Record<string, unknown>, attrs: CiAttributes, bit: number): Layer {
  let byBit = resourceLayers.get(attrs);
  const memo = byBit?.[bit];
  if (memo) return applyValues(r, attrs, bit, memo);
  const layer = applyValues(r, attrs, bit);
  if (!byBit) resourceLayers.set(attrs, (byBit = []));
  // One git object for all levels when they see the same values (ci.git.* apply at every level):
  // a pipeline's git, inherited, is then the very object its descendants' resource layer holds.
  for (const other of byBit) if (other?.git && layer.git && other.git !== layer.git && sameGit(other.git, layer.git)) layer.git = other.git;
  byBit[bit] = layer;
  return layer;
}

/**
 * Writes the level's fields into `r`; returns git and envelope fields apart (they are layered).
 * With `known` (this layer's git and envelope, from an earlier span) only the fields are written.
 */
function applyValues(r: Record<string, unknown>, attrs: CiAttributes, bit: number, known?: Layer): Layer {
  let git: GitInfo | undefined;
  let envelope: Envelope | undefined;
  const values = attrs.values;
  for (let i = 0; i < values.length; i += 2) {
    const spec = values[i] as FieldSpec;
    if ((spec.levels & bit) === 0) continue;
    const value = values[i + 1];
    const [a, b] = spec.path;
    if (spec.envelope) {
      if (!known) (envelope ??= {})[a as keyof Envelope] = value as string;
    } else if (b === undefined) {
      r[a] = value;
    } else if (a === 'git') {
      if (!known) (git ??= {})[b] = value as string;
    } else {
      const sub = (r[a] as Record<string, unknown> | undefined) ?? {};
      sub[b] = value;
      r[a] = sub;
    }
  }
  if (known) return known;
  // Most spans' own attributes carry neither: one shared, frozen answer, no objects.
  if (git === undefined && envelope === undefined) return NO_LAYER;
  return git ? { git, envelope: envelope ?? {} } : { envelope: envelope! };
}

const NO_LAYER: Layer = Object.freeze({ envelope: Object.freeze({}) });

/**
 * The detected git, when it describes the same commit as what attributes say (or they say none):
 * its author, message and times belong to one commit and must not be mixed into another's.
 */
function detectedGitUnder(detected: GitInfo | undefined, ...layers: Array<GitInfo | undefined>): GitInfo | undefined {
  if (!detected) return undefined;
  for (const layer of layers) {
    if (layer?.sha !== undefined && layer.sha.toLowerCase() !== detected.sha?.toLowerCase()) return undefined;
    if (layer?.repository_url !== undefined && detected.repository_url !== undefined && layer.repository_url !== detected.repository_url) return undefined;
  }
  return detected;
}

/**
 * Layers low → high; a layer that names a tag or a branch replaces both of the lower ones'.
 * Returns one of the layers themselves whenever the result has exactly its content, so that a
 * span whose own or resource `ci.git.*` repeats what it inherits shares the inherited object:
 * the caller recognises it by identity (shared JSON, once-per-git validation). Of several layers
 * with that content, the next-to-last argument wins: in `mapSpanParts`' call (detected,
 * resource, inherited, own) that is the ancestors' git, the one object all siblings can share
 * (the resource's and the span's own git are new objects for every span). A new object is built
 * only when a layer adds or changes something, and without `delete`, which would put it into
 * V8's slow dictionary mode.
 */
export function mergeGit(...layers: Array<GitInfo | undefined>): GitInfo | undefined {
  let out: GitInfo | undefined;
  for (const layer of layers) {
    if (!layer || layer === out) continue;
    out = out === undefined ? layer : layerOver(out, layer);
  }
  const preferred = layers.length >= 2 ? layers[layers.length - 2] : undefined;
  return out !== undefined && preferred !== undefined && out !== preferred && sameGit(out, preferred) ? preferred : out;
}

function sameGit(a: GitInfo, b: GitInfo): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _k in b) n--;
  return n === 0;
}

/**
 * What a commit says about itself: a layer naming another commit drops these from below (a job
 * that checks out another SHA must not carry its pipeline's author or message), and a tag names
 * one commit too. The repository and branch still hold for another commit of the same repository.
 */
const COMMIT_KEYS = new Set(['author_name', 'author_email', 'author_time', 'committer_name', 'committer_email', 'commit_time', 'message', 'tag']);

/** `layer` over `below`: `below` or `layer` itself when either already is the result. */
function layerOver(below: GitInfo, layer: GitInfo): GitInfo {
  // Another repository: nothing below describes it.
  if (layer.repository_url !== undefined && below.repository_url !== undefined && layer.repository_url !== below.repository_url) return layer;
  const otherCommit = layer.sha !== undefined && below.sha !== undefined && layer.sha !== below.sha;
  const dropRef = layer.tag !== undefined || layer.branch !== undefined;
  const dropped = (k: string): boolean => (dropRef && (k === 'tag' || k === 'branch')) || (otherCommit && COMMIT_KEYS.has(k));
  // Does the layer change anything below it?
  let changes = false;
  for (const k in below) {
    if (layer[k] === undefined && dropped(k)) {
      changes = true;
      break;
    }
  }
  if (!changes) {
    for (const k in layer) {
      if (below[k] !== layer[k]) {
        changes = true;
        break;
      }
    }
  }
  if (!changes) return below;
  // Does anything below survive that the layer does not name? If not, the layer is the result.
  let keeps = false;
  for (const k in below) {
    if (layer[k] === undefined && !dropped(k)) {
      keeps = true;
      break;
    }
  }
  if (!keeps) return layer;
  // Same key order as spreading `below` then assigning `layer`: the events' bytes do not move.
  const out: GitInfo = {};
  for (const k in below) {
    const v = layer[k];
    if (v !== undefined) out[k] = v;
    else if (!dropped(k)) out[k] = below[k] as string;
  }
  for (const k in layer) if (out[k] === undefined) out[k] = layer[k] as string;
  return out;
}

/** error ← explicit ci.error.*, over the first `exception` event, over the status message. */
function deriveError(r: Record<string, unknown>, span: SpanData): void {
  const explicit = r.error as Record<string, unknown> | undefined;
  const derived: Record<string, unknown> = {};
  // Hand-made spans may carry events that are not objects, or attributes that are not strings.
  const ex = span.events.find((e) => typeof e === 'object' && e !== null && e.name === EXCEPTION);
  const a = ex?.attributes;
  if (typeof a === 'object' && a !== null) {
    const type = textOf(a['exception.type']);
    const message = textOf(a['exception.message']);
    const stack = textOf(a['exception.stacktrace']);
    if (type !== undefined) derived.type = type;
    if (message !== undefined) derived.message = message;
    if (stack !== undefined) derived.stack = stack;
  }
  // Only a string: the SDK's Status.message is typed so, but nothing checks what it is given.
  if (derived.message === undefined && typeof span.status.message === 'string' && span.status.message !== '') derived.message = span.status.message;
  const merged = { ...derived, ...explicit };
  if (Object.keys(merged).length > 0) r.error = merged;
}

/** An attribute value as text, or undefined when it is not a primitive (or absent). */
function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.filter((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean').join(',');
  return undefined;
}
