// The serialization fast path (serialization/event-json.ts): own fields stringified per event,
// shared links/git and the envelope spliced in from caches. Its output must equal, byte for
// byte, JSON.stringify of the plain event, on inputs that stress escaping, unicode, missing
// fields, caches reused across events, and validation removing a shared git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { readCiAttributes, type CiAttributes } from '../src/mapping/attributes.js';
import type { Level } from '../src/mapping/fields.js';
import type { SharedFields } from '../src/mapping/shared.js';
import { mapSpan, mapSpanParts, EMPTY_LINEAGE, type Defaults, type Envelope, type Lineage, type Resource, type SpanData } from '../src/mapping/transform.js';
import { EVENT_TYPE, eventJson } from '../src/serialization/event-json.js';
import { validateEvent } from '../src/validation/validate.js';

const NOW = Date.now();
const NOW_S = Math.floor(NOW / 1000);
const TRACE = '0af7651916cd43dd8448eb211c80319c';
let spanSeq = 0;

const plain = (resource: Record<string, unknown>, envelope: Envelope): string =>
  JSON.stringify({ attributes: { resource, ...envelope }, type: EVENT_TYPE });

function span(name: string, attributes: Attributes, over: Partial<SpanData> = {}): SpanData {
  const spanId = (++spanSeq).toString(16).padStart(16, '0');
  return {
    name,
    spanContext: () => ({ traceId: TRACE, spanId }),
    parentSpanContext: { spanId: 'ffffffffffffffff' },
    startTime: [NOW_S - 60, 123_456_789],
    endTime: [NOW_S - 1, 987_654_321],
    status: { code: SpanStatusCode.UNSET },
    attributes,
    events: [],
    resource: { attributes: {} },
    ...over,
  };
}

const parse = (a: Attributes): CiAttributes => readCiAttributes(a, () => undefined);

/**
 * The exporter's path (parts, validated with `shared`, fast serializer) against the plain path
 * (mapSpan's whole resource, validated, JSON.stringify). Returns the fast JSON.
 */
function both(s: SpanData, level: Level, inherited: Lineage, defaults: Defaults, resourceAttrs: Attributes = {}): string {
  const attrs = parse(s.attributes);
  const res = parse(resourceAttrs);
  const fallback = s.status.code === SpanStatusCode.ERROR ? 'error' : 'success';
  const parts = mapSpanParts(s, level, attrs, res, inherited, defaults);
  const v1 = validateEvent(parts.resource, parts, 'it', NOW, fallback, undefined, parts.shared);
  const whole = mapSpan(s, level, attrs, res, inherited, defaults);
  const v2 = validateEvent(whole.resource, whole, 'it', NOW, fallback);
  assert.equal(v1.ok, v2.ok);
  for (const key of Object.keys(parts.resource)) assert.ok(!parts.shared || !(key in parts.shared), `own and shared both have ${key}`);
  const fast = eventJson(parts.resource, parts.shared, parts.envelope);
  assert.equal(fast, plain(whole.resource, whole.envelope));
  assert.equal(fast, plain({ ...parts.resource, ...parts.shared }, parts.envelope));
  return fast;
}

const NASTY = [
  'quote " and backslash \\ and slash /',
  'newline\n tab\t cr\r nul\u0000 bell\u0007 unit\u001f del\u007f',
  'unicode: é ü ß 日本語 עברית 🚀 👩‍💻',
  'lone surrogates: \ud800 and \udfff',
  '\u2028 line and \u2029 paragraph separators',
  '',
];

test('fast path equals JSON.stringify: a pipeline tree with strings that need escaping', () => {
  const defaults: Defaults = { provider_name: 'prov "x"', env: 'ci\n', service: 'svc 🚀', hostname: 'host\\1' };
  for (const text of NASTY) {
    const pipelineSpan = span(`pipe ${text}`, {
      'ci.url': `https://ci/${text}`,
      'ci.tags': [`k:${text}`, 'b:2'],
      'ci.git.repository_url': `https://g/${text}`,
      'ci.git.sha': 'a'.repeat(40),
      'ci.git.author_email': `a@b ${text}`,
      'ci.git.message': text,
      'ci.git.branch': 'main',
      'ci.parameters.KEY "q"': text,
    });
    const p = mapSpan(pipelineSpan, 'pipeline', parse(pipelineSpan.attributes), parse({}), EMPTY_LINEAGE, defaults);
    both(pipelineSpan, 'pipeline', EMPTY_LINEAGE, defaults);
    const stageSpan = span(`stage ${text}`, { 'ci.dependencies': [text] });
    both(stageSpan, 'stage', p.lineage, defaults);
    const s = mapSpan(stageSpan, 'stage', parse(stageSpan.attributes), parse({}), p.lineage, defaults);
    const jobSpan = span(`job ${text}`, { 'ci.url': 'u', 'ci.node.name': text, 'ci.node.labels': [text], 'ci.queue_time': 5 });
    both(jobSpan, 'job', s.lineage, defaults);
    const j = mapSpan(jobSpan, 'job', parse(jobSpan.attributes), parse({}), s.lineage, defaults);
    // Several siblings: the second and later reuse the cached shared JSON.
    for (let k = 0; k < 3; k++) {
      const step = span(`step ${k} ${text}`, { 'ci.tags': [`t:${text}`] }, {
        status: { code: SpanStatusCode.ERROR, message: `failed: ${text}` },
        events: [{ name: 'exception', attributes: { 'exception.type': text, 'exception.message': text, 'exception.stacktrace': `at ${text}` } }],
      });
      const json = both(step, 'step', j.lineage, defaults);
      const parsed = JSON.parse(json) as { attributes: { resource: Resource; service: string } };
      assert.equal(parsed.attributes.resource.job_name, `job ${text}`);
      assert.equal(parsed.attributes.resource.pipeline_name, `pipe ${text}`);
      assert.equal(parsed.attributes.service, 'svc 🚀');
    }
  }
});

test('fast path equals JSON.stringify: missing and undefined fields, and no shared fields at all', () => {
  // No env, no service, no hostname: the envelope has provider_name only.
  const bare: Defaults = { provider_name: 'custom' };
  both(span('root pipeline', { 'ci.url': 'u' }), 'pipeline', EMPTY_LINEAGE, bare);
  // An orphan step with explicit links and nothing inherited: everything is its own.
  both(span('orphan', { 'ci.pipeline_unique_id': 'x', 'ci.pipeline_name': 'remote "p"', 'ci.job_name': 'j' }), 'step', EMPTY_LINEAGE, bare);
  // A running job: no end.
  both(span('running', { 'ci.url': 'u', 'ci.status': 'running' }), 'job', { pipeline: { unique_id: 'p', name: 'p' } }, bare);
  // Explicit link attributes under a known ancestor give way to the lineage's.
  const inherited: Lineage = { pipeline: { unique_id: 'p-id', name: 'pipe' }, stage: { id: 's', name: 'st' }, job: { id: 'j', name: 'jb' } };
  const json = both(span('step', { 'ci.pipeline_name': 'ignored', 'ci.stage_id': 'ignored', 'ci.job_name': 'ignored' }), 'step', inherited, bare);
  assert.doesNotMatch(json, /ignored/);
  // Envelope switching back and forth between values (the cache holds one).
  for (const env of ['a', undefined, 'a', 'b\u2028']) {
    both(span('s', { 'ci.env': env ?? null } as Attributes), 'step', inherited, { provider_name: 'custom', service: env });
  }
  // Own git layered over the inherited one: own, not shared.
  const withGit: Lineage = { ...inherited, git: { repository_url: 'r', sha: 'b'.repeat(40), author_email: 'e', branch: 'main' } };
  both(span('tagged', { 'ci.git.tag': 'v1 "x"' }), 'step', withGit, bare);
  both(span('plain', {}), 'step', withGit, bare);
  // Resource-level git and env under an inherited git: merged, own.
  both(span('res', {}), 'job', withGit, bare, { 'ci.git.branch': 'res', 'ci.env': 'from-resource' });
});

test('fast path equals JSON.stringify: a shared git that validation leaves out, for every sibling', () => {
  const badGit: Lineage = { pipeline: { unique_id: 'p', name: 'p' }, git: { repository_url: 'r', sha: 'not-a-sha', author_email: 'e' } };
  const first = both(span('a', {}), 'step', badGit, { provider_name: 'custom' });
  const second = both(span('b', {}), 'step', badGit, { provider_name: 'custom' });
  assert.doesNotMatch(first, /"git"/);
  assert.doesNotMatch(second, /"git"/);
  // Tag and branch both set: fixed in place (tag only) before the first serialization.
  const both2: Lineage = { pipeline: { unique_id: 'p2', name: 'p2' }, git: { repository_url: 'r', sha: 'c'.repeat(40), author_email: 'e', tag: 'v1', branch: 'main' } };
  const j1 = both(span('c', {}), 'stage', both2, { provider_name: 'custom' });
  const j2 = both(span('d', {}), 'stage', both2, { provider_name: 'custom' });
  assert.match(j1, /"tag":"v1"/);
  assert.doesNotMatch(j2, /"branch"/);
});

test('eventJson on hand-made parts equals JSON.stringify of the merged event', () => {
  const cases: Array<[Record<string, unknown>, SharedFields | undefined, Envelope]> = [
    [{ level: 'step', name: NASTY.join('|'), status: 'success', start: 's' }, { pipeline_unique_id: 'p', pipeline_name: NASTY[2] }, { provider_name: 'x' }],
    [{ level: 'step', name: 'n', status: 'success', start: 's', extra: undefined }, {}, { provider_name: 'x', env: undefined, service: 's' }],
    [{ level: 'job', name: 'n', status: 'error', start: 's', error: { message: NASTY[1] } }, undefined, {}],
    [{ level: 'stage', name: 'n', status: 'success', start: 's', tags: [] }, { git: { sha: NASTY[3]! } }, { env: 'e' }],
  ];
  for (const [own, shared, envelope] of cases) {
    for (let i = 0; i < 2; i++) {
      assert.equal(eventJson(own as Resource, shared, envelope), plain({ ...own, ...shared }, envelope));
    }
  }
});
