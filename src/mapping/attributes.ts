// Reads `ci.*` attributes into typed values, following the table in fields.ts. Pure: a value of
// the wrong type is reported through `onProblem` and skipped, never thrown.
import type { AttributeValue, Attributes } from '@opentelemetry/api';
import { FIELDS, LEVEL_ATTRIBUTE, PARAMETERS_PREFIX, type FieldSpec } from './fields.js';
import { DATADOG_CI_KEYS } from '../vocabularies/datadog.js';

export interface CiAttributes {
  /** Raw `ci.level` value, if any. */
  level?: string;
  /** Recognised fields with values already coerced to their type. Later entries win. */
  values: Array<readonly [FieldSpec, unknown]>;
  /** `ci.parameters.<key>` → value as string. */
  parameters?: Record<string, string>;
  /** Set when a key may be one of Datadog's tag names (`git.*`, `ci.pipeline.url`, …): src/vocabularies/datadog.ts reads them. */
  datadog?: true;
}

/** Called with the attribute key and what is wrong with its value. */
export type ProblemSink = (attribute: string, problem: string) => void;

export function readCiAttributes(attributes: Attributes, onProblem: ProblemSink): CiAttributes {
  const out: CiAttributes = { values: [] };
  for (const key in attributes) {
    // Cheap prefix test first: most attributes of a span are not ours.
    const c0 = key.charCodeAt(0);
    if (c0 !== 99 /* c */ || key.charCodeAt(1) !== 105 /* i */ || key.charCodeAt(2) !== 46 /* . */) {
      if (c0 === 103 /* g */ && key.startsWith('git.')) out.datadog = true;
      continue;
    }
    const raw = attributes[key];
    if (raw === undefined || raw === null) continue;
    if (key === LEVEL_ATTRIBUTE) {
      out.level = typeof raw === 'string' ? raw : String(raw);
      continue;
    }
    const spec = FIELDS.get(key);
    if (spec) {
      const v = coerce(spec, raw);
      if (v === INVALID) onProblem(key, `expects ${describeType(spec)}, got ${preview(raw)}; ignored`);
      else if (v !== undefined) out.values.push([spec, v]);
      continue;
    }
    if (key.startsWith(PARAMETERS_PREFIX) && key.length > PARAMETERS_PREFIX.length) {
      (out.parameters ??= {})[key.slice(PARAMETERS_PREFIX.length)] = Array.isArray(raw) ? raw.join(',') : String(raw);
      continue;
    }
    // Any other ci.* key names no field (e.g. ci.pipeline.name from another tool's vocabulary): not
    // sent as such; Datadog's own names among them are a fallback (src/vocabularies/datadog.ts).
    if (DATADOG_CI_KEYS.has(key)) out.datadog = true;
  }
  return out;
}

const INVALID = Symbol('invalid');

function coerce(spec: FieldSpec, raw: AttributeValue): unknown {
  switch (spec.type) {
    case 'string':
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      return INVALID;
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string') {
        const s = raw.trim().toLowerCase();
        if (s === 'true' || s === '1') return true;
        if (s === 'false' || s === '0') return false;
      }
      if (raw === 1 || raw === 0) return raw === 1;
      return INVALID;
    case 'integer': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      return Number.isFinite(n) && n >= 0 ? Math.round(n) : INVALID;
    }
    case 'string[]':
      if (Array.isArray(raw)) {
        const list: string[] = [];
        for (const item of raw) if (item !== null && item !== undefined && item !== '') list.push(String(item));
        return list;
      }
      // Resource attributes from OTEL_RESOURCE_ATTRIBUTES cannot be arrays: accept a comma list.
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      return INVALID;
    case 'time': {
      const ms = typeof raw === 'number' ? raw : typeof raw === 'string' ? Date.parse(raw) : NaN;
      // Beyond ±8.64e15 a Date cannot hold it (seconds or nanoseconds given as milliseconds).
      return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? ms : INVALID;
    }
  }
}

function describeType(spec: FieldSpec): string {
  switch (spec.type) {
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean (true/false)';
    case 'integer':
      return 'a non-negative integer (milliseconds)';
    case 'string[]':
      return 'a string array (or a comma-separated string)';
    case 'time':
      return 'an RFC3339 time string or epoch milliseconds';
  }
}

function preview(v: AttributeValue): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
