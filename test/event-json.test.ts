// The serializer (src/serialization/event-json.ts) against JSON.stringify, as a property: for any
// own fields, shared fields and envelope (adversarial strings included: quotes, backslashes,
// control characters, lone and paired surrogates, U+2028/U+2029, emoji, very long strings;
// numbers JSON cannot write; undefined members), the spliced, cached JSON equals, byte for byte,
// JSON.stringify of the merged event. Each case is serialized twice and with shared objects
// reused across cases, so the caches are exercised too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EVENT_TYPE, buildEvent, eventJson } from '../src/serialization/event-json.js';
import { apiKeyNeedle, redactApiKey } from '../src/mapping/scrub.js';
import type { SharedFields } from '../src/mapping/shared.js';
import type { Envelope, Resource } from '../src/mapping/transform.js';

const NASTY = [
  '"',
  '\\',
  '\\"',
  '\u0000',
  '\u001f',
  '\u007f',
  '\n\r\t\b\f',
  '\ud800',
  '\udfff',
  'x\ud83dy',
  '\ude80x',
  '🚀',
  '👩‍💻',
  '\u2028',
  '\u2029',
  'é日本',
  '</script>',
  '',
];

/** Strings built from UTF-16 code units of every kind: lone surrogates come out often. */
const unit = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: 'grapheme', maxLength: 3 }),
  fc.string({ maxLength: 8 }),
);
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  // Very long: a clean one and one with a single escape far in.
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1000, max: 20_000 }), fc.constantFrom('', ...NASTY)).map(([n, s]) => 'a'.repeat(n) + s + 'b'.repeat(n >> 1)) },
);
const key = fc.oneof(fc.constantFrom('name', 'url', 'tags', 'node', 'error', 'git', 'parameters', 'queue_time', '__proto__', '1', '0'), text);
const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(-0, NaN, Infinity, -Infinity, 1e21, 5e-324));
const leaf = fc.oneof(text, num, fc.boolean(), fc.constant(null), fc.constant(undefined));
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 4 })),
})).v;

/** An object with exactly these members, in this order (`__proto__` defined, not assigned). */
function object(entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const own = fc
  .tuple(fc.constantFrom('pipeline', 'stage', 'job', 'step'), fc.array(fc.tuple(key, value), { maxLength: 8 }))
  .map(([level, entries]) => object([['level', level], ...entries.filter(([k]) => k !== 'level')]) as Resource);
const git = fc.dictionary(fc.constantFrom('repository_url', 'sha', 'branch', 'tag', 'author_email', 'message'), text, { maxKeys: 6 });
const shared = fc.option(
  fc.record(
    { pipeline_unique_id: text, pipeline_name: text, stage_id: text, stage_name: text, job_id: text, job_name: text, git },
    { requiredKeys: [] },
  ) as fc.Arbitrary<SharedFields>,
  { nil: undefined },
);
const envelope = fc.record({ provider_name: fc.option(text, { nil: undefined }), env: fc.option(text, { nil: undefined }), service: fc.option(text, { nil: undefined }) }, { requiredKeys: [] }) as fc.Arbitrary<Envelope>;

const plain = (o: Resource, s: SharedFields | undefined, e: Envelope): string => {
  // The spread of `shared` after `own`, as the exporter's events are defined; a key of both
  // cannot happen (the mapping keeps them apart), so cases with one are left out.
  return JSON.stringify({ attributes: { resource: { ...o, ...s }, ...e }, type: EVENT_TYPE });
};

test('eventJson equals JSON.stringify of the merged event, for any fields (property)', () => {
  let previousShared: SharedFields | undefined;
  fc.assert(
    fc.property(own, shared, envelope, fc.boolean(), (o, s0, e, reuse) => {
      // Siblings share one object: reuse the last case's shared fields now and then (cache hits).
      const s = reuse && previousShared !== undefined ? previousShared : s0;
      previousShared = s;
      if (s !== undefined && Object.keys(o).some((k) => k in s)) return; // not a shape the mapping makes
      const expected = plain(o, s, e);
      assert.equal(eventJson(o, s, e), expected);
      assert.equal(eventJson(o, s, e), expected); // cached shared members and envelope
      JSON.parse(expected); // and it is JSON
    }),
    { numRuns: 2000, seed: Number(process.env.FC_SEED ?? 4242) },
  );
});

test('eventJson: every adversarial string in every position', () => {
  for (const s of [...NASTY, NASTY.join(''), 'x'.repeat(100_000) + '\ud800', '🚀'.repeat(10_000)]) {
    const o = object([
      ['level', 'step'],
      ['name', s],
      [s, s],
      ['tags', [s, `k:${s}`]],
      ['node', object([['labels', [s]], [s, 1]])],
      ['parameters', object([[s, s]])],
    ]) as Resource;
    const sh: SharedFields = { pipeline_unique_id: s, pipeline_name: s, git: { message: s, [s]: s } };
    const e: Envelope = { provider_name: s, env: s, service: s };
    assert.equal(eventJson(o, sh, e), plain(o, sh, e));
  }
});

// buildEvent keeps an event in parts and redacts each alone (see event-json.ts): its text must be
// that of the joined path, and its byte count that text's UTF-8 length, whatever the key is and
// wherever it appears (in own fields, shared ones, the envelope, across parts, in the constant
// prefix) — a real key (32 hex digits), keys made of JSON's structural characters, and keys cut
// from the event's own text.
const KEYS = ['0123456789abcdef0123456789abcdef', 'attributes', 'cipipeline_resource_request', 'level":"step', '"},"provider', 'x\\y\u0001z\ud800', 'é日本語の鍵です', undefined];
test('buildEvent: the joined JSON, redacted of the key, and its UTF-8 length, for any key (property)', () => {
  let previousShared: SharedFields | undefined;
  fc.assert(
    fc.property(own, shared, envelope, fc.boolean(), fc.constantFrom(...KEYS), fc.nat(), (o, s0, e, reuse, key0, cut) => {
      const s = reuse && previousShared !== undefined ? previousShared : s0;
      previousShared = s;
      if (s !== undefined && Object.keys(o).some((k) => k in s)) return;
      const joined = eventJson(o, s, e);
      // Now and then the key is a piece of the event's own text: it is then found for sure.
      const key = key0 === undefined && joined.length > 16 ? joined.slice(cut % (joined.length - 12), (cut % (joined.length - 12)) + 12) : key0;
      const needle = apiKeyNeedle(key);
      const expected = redactApiKey(joined, needle);
      for (let i = 0; i < 2; i++) {
        const ev = buildEvent(o, s, e, needle, 1, () => 'x');
        assert.equal(ev.json, expected);
        assert.equal(ev.bytes, Buffer.byteLength(expected));
        if (needle !== undefined) assert.ok(!ev.json.includes(needle), 'the key is gone');
      }
    }),
    { numRuns: 2000, seed: Number(process.env.FC_SEED ?? 4242) },
  );
});

test('buildEvent: a key in every part is redacted in each, and the part-wise path is taken for a real key', () => {
  const key = '0123456789abcdef0123456789abcdef';
  const needle = apiKeyNeedle(key);
  const o = object([['level', 'job'], ['name', `n-${key}`], ['url', key]]) as Resource;
  const sh: SharedFields = { pipeline_unique_id: key, pipeline_name: 'p', git: { message: `m ${key} m` } };
  const e: Envelope = { provider_name: 'custom', service: key };
  const ev = buildEvent(o, sh, e, needle, 1, () => 'x');
  assert.equal(ev.json, redactApiKey(eventJson(o, sh, e), needle));
  assert.equal(ev.json.split('[redacted]').length - 1, 5);
  assert.equal(Object.getOwnPropertyDescriptor(ev, 'json'), undefined, 'kept in parts (json is joined on demand)');
});
