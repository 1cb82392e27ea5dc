// Validates a request body like Datadog: the official JSON Schema (2020-12, converted from the
// API's OpenAPI spec; shipped in the package, bundled into dist/ by the JSON import) and the
// spec's prose rules.
//
// Why Ajv, a runtime dependency: the schema is ~26 kB of nested oneOf variants, formats and
// nullable unions that Datadog changes from time to time. A well-kept validator applies the
// official file as published; hand-written checks would drift from it silently. Ajv is loaded
// only by the intake (the `intake` subcommand, the `/intake` entry), never by the exporter.
//
// Why the focused pass: the schema picks an event's variant by oneOf, so a bad step gets errors
// from all six variants ("must be equal to constant pipeline", ...). Like Datadog's own answers,
// ours should name the one field that is wrong: when the body fails, each event is validated
// again against the variant its `level` (and `status`: running pipelines and jobs) selects.
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import schemaJson from './pipeline-event-request.schema.json' with { type: 'json' };
import { quote } from '../diagnostics.js';
import { checkProseRules, eventsOf } from './prose-rules.js';
import type { Problem } from './problems.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
  data?: unknown;
}
type Validator = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
interface AjvLike {
  compile(schema: object): Validator;
  getSchema(ref: string): Validator | undefined;
  addSchema(schema: object): unknown;
}

/** CJS modules seen through ESM (and through esbuild's CJS interop): the export may sit on .default. */
function interop<T>(mod: unknown): T {
  const m = mod as { default?: unknown };
  return (typeof m === 'function' ? m : (m.default ?? m)) as T;
}

type Schema = { $id: string; $defs: Record<string, Record<string, unknown>> };
const SCHEMA = schemaJson as unknown as Schema;

/** The schema's variant for each level (and running status). */
const VARIANTS = {
  pipeline: 'CIAppPipelineEventFinishedPipeline',
  'pipeline:running': 'CIAppPipelineEventInProgressPipeline',
  stage: 'CIAppPipelineEventStage',
  job: 'CIAppPipelineEventFinishedJob',
  'job:running': 'CIAppPipelineEventInProgressJob',
  step: 'CIAppPipelineEventStep',
} as const;
type VariantKey = keyof typeof VARIANTS;
const LEVELS = ['pipeline', 'stage', 'job', 'step'];

export interface SchemaValidator {
  /** The official schema, whole: the authority on valid or not. */
  (data: unknown): boolean;
  errors?: AjvError[] | null;
}

interface Compiled {
  whole: SchemaValidator;
  item: Map<VariantKey, Validator>;
}

let compiled: Compiled | undefined;

/** Compiles the schema once per process (about 100 ms; lazily, so that loading the module is cheap). */
function compile(): Compiled {
  if (compiled) return compiled;
  const Ajv2020 = interop<new (o: object) => AjvLike>(Ajv2020Module);
  const addFormats = interop<(ajv: AjvLike) => void>(addFormatsModule);
  const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true, verbose: true });
  addFormats(ajv);
  const whole = ajv.compile(SCHEMA);
  // One data item whose resource is exactly one variant: the schema's own definitions, with the
  // resource's oneOf replaced by the variant chosen from the event's level.
  const defs = SCHEMA.$defs;
  const data = defs.CIAppCreatePipelineEventRequestData!;
  const attributes = defs.CIAppCreatePipelineEventRequestAttributes!;
  const focusedDefs: Record<string, object> = {};
  for (const [key, variant] of Object.entries(VARIANTS)) {
    focusedDefs[`item:${key}`] = {
      ...data,
      properties: {
        ...(data.properties as object),
        attributes: {
          ...attributes,
          properties: { ...(attributes.properties as object), resource: { $ref: `#/$defs/${variant}` } },
        },
      },
    };
  }
  const focusedId = `${SCHEMA.$id}:focused`;
  ajv.addSchema({ ...SCHEMA, $id: focusedId, $ref: undefined, $defs: { ...defs, ...focusedDefs } });
  const item = new Map<VariantKey, Validator>();
  for (const key of Object.keys(VARIANTS) as VariantKey[]) {
    const v = ajv.getSchema(`${focusedId}#/$defs/item:${key}`);
    if (!v) throw new Error(`intake: the schema has no definition for ${key}`);
    item.set(key, v);
  }
  compiled = { whole, item };
  return compiled;
}

/** The official schema's validator (whole request body). */
export function schemaValidator(): SchemaValidator {
  return compile().whole;
}

function problemOf(e: AjvError, prefix: string, event: number | null): Problem {
  let pointer = prefix + e.instancePath;
  let message = e.message ?? e.keyword;
  if (e.keyword === 'required' && typeof e.params.missingProperty === 'string') {
    pointer += `/${e.params.missingProperty}`;
    message = 'is required';
  } else {
    if (e.keyword === 'enum' && Array.isArray(e.params.allowedValues)) {
      message = `must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'const') {
      message = `must be ${JSON.stringify(e.params.allowedValue)}`;
    }
    if (e.data !== undefined) message += `, got ${quote(e.data, 80)}`;
  }
  return { event, pointer, message };
}

function variantOf(item: unknown): VariantKey | undefined {
  const r = (item as { attributes?: { resource?: { level?: unknown; status?: unknown } } } | null)?.attributes?.resource;
  if (!r || typeof r !== 'object') return undefined;
  const level = r.level;
  if (typeof level !== 'string' || !LEVELS.includes(level)) return undefined;
  if ((level === 'pipeline' || level === 'job') && r.status === 'running') return `${level}:running` as VariantKey;
  return level as VariantKey;
}

/** Schema problems of a body, each on its event and field. Empty when the body is schema-valid. */
export function schemaProblems(body: unknown): Problem[] {
  const { whole, item } = compile();
  if (whole(body)) return [];
  const problems: Problem[] = [];
  const raw = (whole.errors ?? []).filter((e) => e.keyword !== 'oneOf');
  const data = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as { data?: unknown }).data : undefined;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return [{ event: null, pointer: '', message: 'the body must be a JSON object with a "data" member' }];
  }
  if (data === null || (data !== undefined && typeof data !== 'object')) {
    return [{ event: null, pointer: '/data', message: `must be an event object or an array of event objects, got ${quote(data, 80)}` }];
  }
  const items = eventsOf(body);
  items.forEach((it, i) => {
    const prefix = Array.isArray(data) ? `/data/${i}` : '/data';
    if (it === null || typeof it !== 'object' || Array.isArray(it)) {
      problems.push({ event: i, pointer: prefix, message: `must be an event object, got ${quote(it, 80)}` });
      return;
    }
    const key = variantOf(it);
    if (!key) {
      const r = (it as { attributes?: { resource?: unknown } }).attributes?.resource;
      if (r === undefined) {
        problems.push({ event: i, pointer: `${prefix}/attributes/resource`, message: 'is required' });
      } else if (r === null || typeof r !== 'object') {
        problems.push({ event: i, pointer: `${prefix}/attributes/resource`, message: `must be an object, got ${quote(r, 80)}` });
      } else {
        const level = (r as { level?: unknown }).level;
        problems.push({
          event: i,
          pointer: `${prefix}/attributes/resource/level`,
          message: level === undefined ? 'is required (one of pipeline, stage, job, step)' : `must be one of pipeline, stage, job, step, got ${quote(level, 40)}`,
        });
      }
      return;
    }
    const v = item.get(key)!;
    if (v(it)) return;
    const seen = new Set<string>();
    for (const e of v.errors ?? []) {
      if (e.keyword === 'oneOf' || e.keyword === 'anyOf') continue;
      const p = problemOf(e, prefix, i);
      const k = `${p.pointer}\n${p.message}`;
      if (!seen.has(k)) {
        seen.add(k);
        problems.push(p);
      }
    }
  });
  // The focused pass must explain every failure of the whole schema; if it did not, say what Ajv said.
  return problems.length > 0 ? problems : raw.map((e) => problemOf(e, '', null));
}

export interface BodyCheck {
  /** Violations of the schema or the prose rules: the body is answered 400. */
  problems: Problem[];
  /** What the spec asks for that the API accepts without; shown, not rejected. */
  notes: Problem[];
}

/** The whole check of one parsed body: schema, then prose rules (`now` is the 18-hour rule's reference). */
export function validateBody(body: unknown, now: number): BodyCheck {
  const problems = schemaProblems(body);
  const prose = checkProseRules(body, now);
  return { problems: [...problems, ...prose.errors], notes: prose.notes };
}
