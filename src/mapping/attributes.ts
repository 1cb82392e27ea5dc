// Reads `ci.*` attributes into typed values, following the table in fields.ts. Pure: a value of
// the wrong type is reported through `onProblem` and skipped, never thrown.
import type { AttributeValue, Attributes } from '@opentelemetry/api';
import { quote } from '../diagnostics.js';
import { FIELDS, LEVEL_ATTRIBUTE, PARAMETERS_PREFIX, type FieldSpec } from './fields.js';
import { inTimeRange } from './time.js';
import { DATADOG_CI_KEYS } from '../vocabularies/datadog.js';

export interface CiAttributes {
  /** Raw `ci.level` value, if any. */
  level?: string;
  /**
   * Recognised fields with values already coerced to their type, as pairs laid flat: a field's
   * spec at an even index, its value at the next (no small array per attribute, for the
   * collector to sweep). Later pairs win.
   */
  values: unknown[];
  /** `ci.parameters.<key>` → value as string. */
  parameters?: Record<string, string>;
  /** Set when a key may be one of Datadog's tag names (`git.*`, `ci.pipeline.url`, …): src/vocabularies/datadog.ts reads them. */
  datadog?: true;
}

/**
 * Parameters kept per span (resource and span each). An object of 100,000 new keys costs a
 * quarter of a second to build and as much to serialize, in one piece; a CI run has a few
 * dozen. (The SDK itself keeps 128 attributes per span unless told otherwise.)
 */
export const MAX_PARAMETERS = 1000;

/** Called with the attribute key and what is wrong with its value. */
export type ProblemSink = (attribute: string, problem: string) => void;

/**
 * `o[key] = value`, except that a key named `__proto__` (a span's attribute, a parameter, a
 * baggage member: whatever a producer sent) is defined as an own property like any other key:
 * assigned, it would set the object's prototype and the value would be lost.
 */
export function setOwn<T>(o: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

export function readCiAttributes(attributes: Attributes, onProblem: ProblemSink): CiAttributes {
  const out: CiAttributes = { values: [] };
  let parameterCount = 0;
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
      if (v === INVALID) onProblem(key, `expects ${describeType(spec)}, got ${quote(raw, 60)}; ignored`);
      else if (v !== undefined) out.values.push(spec, v);
      continue;
    }
    if (key.startsWith(PARAMETERS_PREFIX) && key.length > PARAMETERS_PREFIX.length) {
      if (++parameterCount > MAX_PARAMETERS) {
        if (parameterCount === MAX_PARAMETERS + 1) onProblem('ci.parameters.*', `is set more than ${MAX_PARAMETERS} times on one span (one per key); the rest are left out`);
        continue;
      }
      const params = (out.parameters ??= {});
      const name = key.slice(PARAMETERS_PREFIX.length);
      const value = parameterValue(raw);
      if (value === undefined) {
        onProblem(key, `expects a string, got ${quote(raw, 60)}; ignored`);
        continue;
      }
      setOwn(params, name, value);
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
      // The API's integers are int64, and JSON numbers are exact up to 2^53: beyond it (1e300,
      // or 1e21, which JSON writes as "1e+21") the value is not an integer Datadog can read.
      if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER)) return INVALID;
      return Math.round(n);
    }
    case 'string[]':
      if (Array.isArray(raw)) {
        // The usual case, an array of non-empty strings, is taken as it is (nothing changes it
        // later: validation builds new lists): no copy of a 100,000-entry list.
        let plain = 0;
        while (plain < raw.length && typeof raw[plain] === 'string' && raw[plain] !== '') plain++;
        if (plain === raw.length) return raw;
        const list: string[] = [];
        // Primitives only: a hand-made span may put anything in an array (String() of an object
        // without a prototype throws).
        for (const item of raw as unknown[]) {
          if (typeof item === 'string') {
            if (item !== '') list.push(item);
          } else if (typeof item === 'number' || typeof item === 'boolean') list.push(String(item));
        }
        return list;
      }
      // Resource attributes from OTEL_RESOURCE_ATTRIBUTES cannot be arrays: accept a comma list.
      if (typeof raw === 'string') return splitList(raw);
      return INVALID;
    case 'time': {
      const ms = typeof raw === 'number' ? raw : typeof raw === 'string' ? Date.parse(raw) : NaN;
      // RFC3339 writes years 0000–9999 only (and seconds or nanoseconds given as milliseconds
      // land outside them).
      return inTimeRange(ms) ? ms : INVALID;
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
      return `a non-negative integer up to ${Number.MAX_SAFE_INTEGER} (milliseconds)`;
    case 'string[]':
      return 'a string array (or a comma-separated string)';
    case 'time':
      return 'an RFC3339 time string or epoch milliseconds, within years 0000-9999';
  }
}

/**
 * A comma-separated list: trimmed, empty items left out. One array, compacted in place (a list
 * of 100,000 items is one value: map + filter would allocate it three times over).
 */
function splitList(raw: string): string[] {
  const parts = raw.split(',');
  let w = 0;
  for (const p of parts) {
    const t = p.length > 0 && (p.charCodeAt(0) <= 32 || p.charCodeAt(p.length - 1) <= 32) ? p.trim() : p;
    if (t !== '') parts[w++] = t;
  }
  parts.length = w;
  return parts;
}

/** A parameter's value as text: primitives, or an array of them joined with commas. */
function parameterValue(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  if (!Array.isArray(raw)) return undefined;
  const items: string[] = [];
  for (const item of raw as unknown[]) if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') items.push(String(item));
  return items.join(',');
}
