// Generators for the span fuzz suite (test/fuzz-spans.test.ts): span trees as a bridge, an OTLP
// receiver or a careless hand might build them, with arbitrary `ci.*` values (every JSON type,
// huge, empty, unicode edge cases, lone surrogates, control characters), arbitrary times and IDs,
// parent links that may loop or point nowhere, and span objects broken in every way the
// exporter's boundary (src/span-shape.ts) has to survive.
import fc from 'fast-check';
import { SpanStatusCode } from '@opentelemetry/api';
import { FIELDS } from '../../src/mapping/fields.js';

export const NOW = Date.now();
const NOW_S = Math.floor(NOW / 1000);

/** Characters that break naive code: separators, control characters, line breaks, lone surrogates. */
const nastyChar = fc.oneof(
  fc.constantFrom(':', ',', ' ', '\t', '\n', '\r', '\u0000', '\u001b', '\u2028', '\u2029', '"', '\\', '\u00e9', '\u{1F600}', '\uFEFF'),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
);
const anyChar = fc.oneof({ weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }, { weight: 2, arbitrary: nastyChar });

export const nastyString = fc.string({ unit: anyChar, maxLength: 40 });

/** A string that is sometimes big (up to ~200 KB), built cheaply by repetition. */
const bigString = fc.tuple(nastyString, fc.integer({ min: 1, max: 5000 })).map(([s, n]) => (s === '' ? 'x' : s).repeat(n));

/** Strings a CI tool might plausibly put there, and some it should not. */
const plausible = fc.oneof(
  fc.constantFrom('', ' ', 'main', 'success', 'failed', 'running', 'canceled', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'key:value', 'k:1', 'k: ', 'k:1e999', 'k:0x10', 'a,b,,c', '1e300', '-1', 'NaN', '2024-01-02T03:04:05Z', '+010000-01-01T00:00:00Z', 'https://ci.example.com/b/1'),
  fc.string({ unit: fc.constantFrom('0', '1', '9', 'a', 'f', ':', ',', '.', 'e', '-', ' '), maxLength: 20 }),
);

const scalar = fc.oneof(
  { weight: 4, arbitrary: plausible },
  { weight: 3, arbitrary: nastyString },
  { weight: 1, arbitrary: bigString },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 2, arbitrary: fc.double() }, // NaN, ±Infinity, -0, 1e300 included
  { weight: 1, arbitrary: fc.constantFrom(1e300, -1e300, 2 ** 53, 2 ** 63, 1e21, Number.MAX_SAFE_INTEGER + 2, 253_402_300_800_000, -62_167_219_200_001) },
  { weight: 2, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined) },
);

/** Any value a `ci.*` attribute may hold: every JSON type (objects too, as hand-made spans allow). */
export const ciValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 12 }) },
  { weight: 1, arbitrary: fc.array(fc.oneof(plausible, fc.constant('k:v'), fc.constant('bad')), { maxLength: 300 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 5 }), scalar, { maxKeys: 3 }) },
);

const CI_KEYS = [...FIELDS.keys()];
const ciKey = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...CI_KEYS) },
  { weight: 1, arbitrary: nastyString.map((k) => `ci.parameters.${k}`) },
  { weight: 1, arbitrary: fc.constantFrom('ci.parameters.__proto__', 'ci.parameters.constructor', 'ci.', 'ci.git', 'ci.pipeline.name', 'ci.node') },
);

export const levelValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('pipeline', 'stage', 'job', 'step') },
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.constantFrom('Pipeline', ' job ', 'STEP', 'task', '', 'pipeline\n') },
  { weight: 1, arbitrary: scalar },
);

/** A time: mostly a plausible HrTime, sometimes anything a hand-made span could carry. */
export const timeValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(fc.integer({ min: NOW_S - 3600, max: NOW_S }), fc.integer({ min: 0, max: 999_999_999 })) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: NOW_S - 30 * 86_400, max: NOW_S + 86_400 }), fc.integer({ min: 0, max: 999_999_999 })) },
  { weight: 1, arbitrary: fc.tuple(fc.double(), fc.double()) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1e13, -1e13, 253_402_300_800, -62_167_219_201, NaN, NOW_S + 0.5), fc.constantFrom(0, 1e9, -1, 2e9, NaN)) },
  { weight: 1, arbitrary: fc.oneof(fc.double(), fc.constant(NOW - 1000)) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, 'yesterday', [], [NOW_S]) },
);

/** Ways to break a span object (undefined: a well-formed one). */
export const DEFECTS = [
  'not-object',
  'no-span-context',
  'span-context-not-function',
  'bad-ids',
  'no-attributes',
  'attributes-array',
  'no-events',
  'garbage-events',
  'no-resource',
  'garbage-resource',
  'garbage-status',
  'v1-parent',
  'empty-parent',
  'throwing-getter',
] as const;
export type Defect = (typeof DEFECTS)[number];

/** Defects that make the exporter refuse a span outright, labelled or not. */
export const STRUCTURAL: ReadonlySet<Defect> = new Set(['not-object', 'no-span-context', 'span-context-not-function', 'bad-ids', 'no-attributes', 'attributes-array', 'throwing-getter']);

export interface NodePlan {
  /** -1: a root; -2: a parent that never arrives; otherwise an index in the tree (self, later, or looping allowed). */
  parent: number;
  level: unknown;
  name: unknown;
  attrs: Array<[string, unknown]>;
  start: unknown;
  end: unknown;
  status: unknown;
  error: boolean;
  defect: Defect | undefined;
  /** Use an arbitrary string (made unique) as the span ID rather than 16 hex digits. */
  oddId: string | undefined;
}

const nodePlan = (size: number): fc.Arbitrary<NodePlan> =>
  fc.record({
    parent: fc.oneof({ weight: 2, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: fc.constant(-2) }, { weight: 10, arbitrary: fc.integer({ min: 0, max: Math.max(0, size - 1) }) }),
    level: levelValue,
    name: fc.oneof({ weight: 8, arbitrary: nastyString }, { weight: 1, arbitrary: scalar }),
    attrs: fc.array(fc.tuple(ciKey, ciValue), { maxLength: 8 }),
    start: timeValue,
    end: timeValue,
    status: fc.oneof(
      { weight: 8, arbitrary: fc.record({ code: fc.constantFrom(SpanStatusCode.UNSET, SpanStatusCode.OK, SpanStatusCode.ERROR) }) },
      { weight: 1, arbitrary: fc.record({ code: fc.constantFrom(SpanStatusCode.ERROR, 7, -1), message: ciValue }) },
      { weight: 1, arbitrary: scalar },
    ),
    error: fc.boolean(),
    defect: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...DEFECTS) }),
    oddId: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: nastyString }),
  });

export interface TreePlan {
  traceId: string;
  nodes: NodePlan[];
  /** A sort key per node: the order in which spans are handed to export(). */
  order: number[];
  /** Sizes of the export() calls. */
  batches: number[];
}

const hex = (n: number): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });

export const treePlan: fc.Arbitrary<TreePlan> = fc.integer({ min: 1, max: 24 }).chain((size) =>
  fc.record({
    traceId: fc.oneof({ weight: 10, arbitrary: hex(32) }, { weight: 1, arbitrary: nastyString }),
    nodes: fc.array(nodePlan(size), { minLength: size, maxLength: size }),
    order: fc.array(fc.nat(), { minLength: size, maxLength: size }),
    batches: fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }),
  }),
);

let idSeq = 0;

/** The span objects a plan describes, in export order, and how many the counters must account for. */
export function buildSpans(plans: TreePlan[]): { spans: unknown[]; batches: unknown[][]; accountable: number } {
  const all: Array<{ span: unknown; key: number }> = [];
  let accountable = 0;
  for (const plan of plans) {
    // Span IDs are unique within the run: a span exported twice is one span.
    const ids = plan.nodes.map((n) => (n.oddId !== undefined ? `${n.oddId}#${++idSeq}` : (++idSeq).toString(16).padStart(16, '0')));
    const traceId = plan.traceId === '' ? 'e'.repeat(32) : plan.traceId;
    plan.nodes.forEach((n, i) => {
      const attributes: Record<string, unknown> = {};
      for (const [k, v] of n.attrs) attributes[k] = v;
      if (n.level !== undefined) attributes['ci.level'] = n.level;
      // Often a usable url, so that pipelines and jobs get through and their children link.
      if (n.level === 'pipeline' || n.level === 'job') attributes['ci.url'] ??= `https://ci.example.com/${i}`;
      const span: Record<string, unknown> = {
        name: n.name,
        spanContext: () => ({ traceId, spanId: ids[i], traceFlags: 1 }),
        startTime: n.start,
        endTime: n.end,
        status: n.error ? { code: SpanStatusCode.ERROR, message: 'boom' } : n.status,
        attributes,
        events: n.error ? [{ name: 'exception', attributes: { 'exception.type': 'E', 'exception.message': n.name, 'exception.stacktrace': 'at x' } }] : [],
        resource: { attributes: { 'service.name': 'fuzz', 'host.name': 'h' } },
        kind: 0,
      };
      if (n.parent === -2) span.parentSpanContext = { traceId, spanId: 'ffffffffffffffff', isRemote: false };
      else if (n.parent >= 0) span.parentSpanContext = { traceId, spanId: ids[n.parent % ids.length], isRemote: false };
      let value: unknown = span;
      switch (n.defect) {
        case 'not-object':
          value = n.name ?? null;
          if (typeof value === 'object' && value !== null) value = 0;
          break;
        case 'no-span-context':
          delete span.spanContext;
          break;
        case 'span-context-not-function':
          span.spanContext = { traceId, spanId: ids[i] };
          break;
        case 'bad-ids':
          span.spanContext = () => ({ traceId: 42, spanId: '' });
          break;
        case 'no-attributes':
          delete span.attributes;
          break;
        case 'attributes-array':
          span.attributes = [['ci.level', 'step']];
          break;
        case 'no-events':
          delete span.events;
          break;
        case 'garbage-events':
          span.events = [null, 42, { name: 'exception', attributes: null }, { name: 'exception', attributes: { 'exception.message': { x: 1 } } }];
          break;
        case 'no-resource':
          delete span.resource;
          break;
        case 'garbage-resource':
          span.resource = { attributes: 'service.name=x' };
          break;
        case 'garbage-status':
          span.status = null;
          break;
        case 'v1-parent': {
          const p = span.parentSpanContext as { spanId: string } | undefined;
          delete span.parentSpanContext;
          if (p) span.parentSpanId = p.spanId;
          break;
        }
        case 'empty-parent':
          span.parentSpanContext = { traceId, spanId: '', isRemote: false };
          break;
        case 'throwing-getter':
          Object.defineProperty(span, 'status', { enumerable: true, get: () => { throw new Error('status getter'); } });
          break;
        case undefined:
          break;
      }
      // What the counters answer for (README, "Reading the counters"): every span carrying
      // ci.level, and every object refused outright as malformed whatever its attributes.
      const labelled = n.defect !== 'no-attributes' && n.defect !== 'attributes-array' && n.defect !== 'not-object' && n.level !== undefined;
      if (labelled || (n.defect !== undefined && STRUCTURAL.has(n.defect))) accountable++;
      all.push({ span: value, key: plan.order[i]! });
    });
  }
  const spans = all.sort((a, b) => a.key - b.key).map((x) => x.span);
  const batches: unknown[][] = [];
  const sizes = plans.flatMap((p) => p.batches);
  let at = 0;
  for (let b = 0; at < spans.length; b++) {
    const n = sizes[b % sizes.length]!;
    batches.push(spans.slice(at, at + n));
    at += n;
  }
  return { spans, batches, accountable };
}

/** One span tree whose values are as large as the suite allows: 100,000 entries or ~1 MB strings. */
export const hugeInput: fc.Arbitrary<{ kind: string; attributes: Record<string, unknown> }> = fc
  .tuple(
    fc.constantFrom('tags', 'metrics', 'labels', 'dependencies', 'parameters', 'comma-list', 'long-strings', 'level'),
    // Half the runs at the full 100,000: the few runs of `npm test` must include the limit.
    fc.oneof(fc.constant(100_000), fc.integer({ min: 1, max: 100_000 })),
    nastyString,
  )
  .map(([kind, n, s]) => {
    const bad = (i: number): string => `${s}${i}`;
    const list = (f: (i: number) => string): string[] => Array.from({ length: n }, (_, i) => f(i));
    const attributes: Record<string, unknown> = {};
    switch (kind) {
      case 'tags':
        attributes['ci.tags'] = list((i) => (i % 2 ? bad(i) : `k${i}:v`));
        break;
      case 'metrics':
        attributes['ci.metrics'] = list((i) => (i % 2 ? `m${i}: ` : `m${i}:${i}`));
        break;
      case 'labels':
        attributes['ci.node.labels'] = list(bad);
        break;
      case 'dependencies':
        attributes['ci.dependencies'] = list(bad);
        break;
      case 'parameters':
        for (let i = 0; i < n; i++) attributes[`ci.parameters.${bad(i)}`] = bad(i);
        break;
      case 'comma-list':
        attributes['ci.tags'] = list((i) => (i % 2 ? bad(i) : `k${i}:v`)).join(',');
        break;
      case 'long-strings':
        for (const k of ['ci.name', 'ci.status', 'ci.error.message', 'ci.git.sha', 'ci.node.name', 'ci.env']) attributes[k] = (s || "x").repeat(Math.ceil(n / Math.max(1, s.length))).slice(0, n);
        break;
      case 'level':
        attributes['ci.queue_time'] = `${'9'.repeat(n)}`;
        attributes['ci.start'] = 'x'.repeat(n);
        break;
    }
    return { kind, attributes };
  });
