// decode-spans.ts (protobuf read straight into ReceivedSpans, serve's hot path) against the path
// it replaced, protobufjs' decode then convert.ts (`convertRequest(decodeProto(body))`): on the
// bodies the SDK's real OTLP/protobuf exporter sends, on hand-made requests that use every field
// the conversion reads (every AnyValue kind, bad and missing IDs and times, status, flags,
// events, links, duplicated fields, the resource after its spans), and on thousands of seeded
// mutations of those. Same spans (deep equality, class and all), same rejections and first
// problem, or the same RequestError (status and message).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertRequest, type Converted } from '../src/receiver/convert.js';
import { decodeProto } from '../src/receiver/decode-proto.js';
import { decodeProtoSpans } from '../src/receiver/decode-spans.js';
import { RequestError } from '../src/receiver/limits.js';
import { otlpTypes } from '../src/receiver/proto.js';
import { captureBodies, pipelineSpec } from './support/otlp-serve.js';

const MAX = 500_000;

type Outcome = { ok: Converted } | { error: { status: number; message: string } };

function outcome(f: () => Converted): Outcome {
  try {
    return { ok: f() };
  } catch (err) {
    if (err instanceof RequestError) return { error: { status: err.status, message: err.message } };
    throw err;
  }
}

const before = (body: Buffer): Outcome => outcome(() => convertRequest(decodeProto(body, MAX)));
const after = (body: Buffer): Outcome => outcome(() => decodeProtoSpans(body, MAX));

function same(body: Buffer, what: string): Outcome {
  const a = before(body);
  const b = after(body);
  assert.deepStrictEqual(b, a, what);
  return a;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const ld = (no: number, bytes: Buffer): Buffer => Buffer.concat([Buffer.from([...varint((no << 3) | 2), ...varint(bytes.length)]), bytes]);

const encode = (req: unknown): Buffer => {
  const { request } = otlpTypes();
  return Buffer.from(request.encode(request.fromObject(req as Record<string, unknown>)).finish());
};

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const T = '0123456789abcdef0123456789abcdef';
/** A time in nanoseconds as protobufjs takes a fixed64: a decimal string. */
const ns = (n: bigint): string => n.toString();
const NOW = 1_764_633_600_123_456_789n;

function span(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    traceId: hex(T),
    spanId: hex('1111111111111111'),
    name: 'step',
    kind: 1,
    startTimeUnixNano: ns(NOW),
    endTimeUnixNano: ns(NOW + 5_000_000_000n),
    ...over,
  };
}

const kv = (key: string, value: Record<string, unknown> | undefined): Record<string, unknown> => (value === undefined ? { key } : { key, value });

/** Requests that exercise what the conversion reads, each one a different case. */
function handMade(): Array<{ what: string; body: Buffer }> {
  const cases: Array<{ what: string; body: Buffer }> = [];
  const add = (what: string, req: unknown): void => {
    cases.push({ what, body: encode(req) });
  };
  const one = (what: string, s: Record<string, unknown>, resource?: Record<string, unknown>): void =>
    add(what, { resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 'ci' }, spans: [s] }] }] });
  one('plain span', span());
  one('every AnyValue kind', span({
    attributes: [
      kv('s', { stringValue: 'x' }), kv('empty', { stringValue: '' }), kv('b', { boolValue: true }), kv('f', { boolValue: false }),
      kv('i', { intValue: '42' }), kv('neg', { intValue: '-7' }), kv('big', { intValue: '9007199254740993' }), kv('min', { intValue: '-9223372036854775808' }),
      kv('d', { doubleValue: 1.5 }), kv('dz', { doubleValue: 0 }), kv('nan', { doubleValue: NaN }),
      kv('arr', { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } }),
      kv('arrMixed', { arrayValue: { values: [{ stringValue: 'a' }, { intValue: 1 }, {}] } }),
      kv('arrNested', { arrayValue: { values: [{ arrayValue: { values: [{ boolValue: true }] } }] } }),
      kv('arrEmpty', { arrayValue: {} }), kv('arrHoles', { arrayValue: { values: [{}, { intValue: 3 }, {}] } }),
      kv('kv', { kvlistValue: { values: [kv('a', { intValue: 1 }), kv('b', { kvlistValue: { values: [kv('c', { stringValue: 'd' })] } }), kv('none', undefined), kv('a', { stringValue: 'again' })] } }),
      kv('kvProto', { kvlistValue: { values: [kv('__proto__', { stringValue: 'p' }), kv('constructor', { intValue: 2 })] } }),
      kv('bytes', { bytesValue: Buffer.from([0, 1, 2, 250]) }), kv('bytesEmpty', { bytesValue: Buffer.alloc(0) }),
      kv('novalue', undefined), kv('emptyvalue', {}), kv('s', { stringValue: 'later wins' }),
      kv('', { stringValue: 'empty key' }), kv('unicode ✓', { stringValue: 'é ☃ 𝄞' }), kv('bom', { stringValue: '\uFEFFx' }), kv('bomLong', { stringValue: `${'a'.repeat(8)}\uFEFF${'b'.repeat(70)}` }),
    ],
  }));
  one('resource attributes', span(), { attributes: [kv('service.name', { stringValue: 'svc' }), kv('ci.level', { stringValue: 'pipeline' })] });
  one('parent, remote flags', span({ parentSpanId: hex('2222222222222222'), flags: 0x301 }));
  one('parent, not remote', span({ parentSpanId: hex('2222222222222222'), flags: 0x101 }));
  one('parent, remoteness unknown', span({ parentSpanId: hex('2222222222222222'), flags: 0xffffffff }));
  one('status error with message', span({ status: { code: 2, message: 'boom' } }));
  one('status ok, no message', span({ status: { code: 1 } }));
  one('status out of range', span({ status: { code: 7, message: 'x' } }));
  one('status negative', span({ status: { code: -1 } }));
  one('kind out of range', span({ kind: 9 }));
  one('kind negative', span({ kind: -3 }));
  one('kind unspecified', span({ kind: 0 }));
  one('events', span({ events: [{ name: 'e1', timeUnixNano: ns(NOW + 1n), attributes: [kv('k', { stringValue: 'v' })] }, { name: 'e2', timeUnixNano: ns(NOW + 2n) }] }));
  one('event without time', span({ events: [{ name: 'e1' }] }));
  one('links', span({ links: [{ traceId: hex(T), spanId: hex('3333333333333333'), attributes: [kv('k', { intValue: 1 })] }, {}] }));
  one('link with a short trace id', span({ links: [{ traceId: hex('0102'), spanId: hex('3333333333333333') }] }));
  one('link with a zero span id', span({ links: [{ traceId: hex(T), spanId: Buffer.alloc(8) }] }));
  one('no trace id', span({ traceId: undefined }));
  one('empty trace id', span({ traceId: Buffer.alloc(0) }));
  one('short trace id', span({ traceId: hex('0102030405') }));
  one('zero trace id', span({ traceId: Buffer.alloc(16) }));
  one('no span id', span({ spanId: undefined }));
  one('long span id', span({ spanId: Buffer.alloc(9, 1) }));
  one('zero span id and bad trace id', span({ spanId: Buffer.alloc(8), traceId: Buffer.alloc(3, 1) }));
  one('bad parent id', span({ parentSpanId: hex('01') }));
  one('zero parent id', span({ parentSpanId: Buffer.alloc(8) }));
  one('no start', span({ startTimeUnixNano: undefined }));
  one('no end', span({ endTimeUnixNano: undefined }));
  one('no times, bad ids', span({ startTimeUnixNano: undefined, endTimeUnixNano: undefined, spanId: undefined }));
  one('no name', span({ name: undefined }));
  one('a long name', span({ name: 'n'.repeat(500) }));
  for (const t of [1n, 999_999_999n, 1_000_000_000n, 1_000_000_001n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 1_764_633_599_999_999_999n, 1_764_633_600_000_000_000n, 2n ** 64n - 1n]) {
    one(`time ${t}`, span({ startTimeUnixNano: ns(t), endTimeUnixNano: ns(t) }));
  }
  add('empty request', {});
  add('empty resource spans', { resourceSpans: [{}, { scopeSpans: [{}] }] });
  add('several resources and scopes', {
    resourceSpans: [
      { resource: { attributes: [kv('r', { stringValue: '1' })] }, scopeSpans: [{ spans: [span(), span({ spanId: hex('4444444444444444'), traceId: Buffer.alloc(2) })] }, { spans: [span({ spanId: hex('5555555555555555') })] }] },
      { resource: { attributes: [kv('r', { stringValue: '2' })] }, scopeSpans: [{ spans: [span({ spanId: undefined }), span({ spanId: hex('6666666666666666') })] }] },
    ],
  });
  // Wire shapes protobufjs' encoder does not make: fields repeated or out of order.
  const spanBytes = (s: Record<string, unknown>): Buffer => {
    const { request } = otlpTypes();
    const type = request.lookupType('opentelemetry.proto.trace.v1.Span');
    return Buffer.from(type.encode(type.fromObject(s)).finish());
  };
  const resBytes = (attrs: Array<Record<string, unknown>>): Buffer => {
    const { request } = otlpTypes();
    const type = request.lookupType('opentelemetry.proto.resource.v1.Resource');
    return Buffer.from(type.encode(type.fromObject({ attributes: attrs })).finish());
  };
  const s1 = spanBytes(span());
  cases.push({ what: 'resource after its spans', body: ld(1, Buffer.concat([ld(2, ld(2, s1)), ld(1, resBytes([kv('late', { stringValue: 'r' })]))])) });
  cases.push({ what: 'two resources (the last wins)', body: ld(1, Buffer.concat([ld(1, resBytes([kv('a', { stringValue: '1' })])), ld(2, ld(2, s1)), ld(1, resBytes([kv('b', { stringValue: '2' })]))])) });
  // Concatenated encodings: a second status, name, IDs, time and attribute value replace the first.
  const dup = Buffer.concat([s1, spanBytes({ status: { code: 2, message: 'first' } }), spanBytes({ status: { code: 1 }, name: 'renamed', spanId: hex('7777777777777777'), endTimeUnixNano: ns(NOW + 9n), attributes: [kv('x', { stringValue: 'a' })] })]);
  cases.push({ what: 'repeated singular fields', body: ld(1, ld(2, ld(2, dup))) });
  const anyTwice = ld(9, Buffer.concat([ld(1, Buffer.from('k')), ld(2, Buffer.concat([ld(1, Buffer.from('str')), Buffer.from([0x10, 0x01])])), ld(2, ld(1, Buffer.from('second value')))]));
  cases.push({ what: 'AnyValue with two oneof members, KeyValue with two values', body: ld(1, ld(2, ld(2, Buffer.concat([s1, anyTwice])))) });
  const oneofLast = ld(9, Buffer.concat([ld(1, Buffer.from('k')), ld(2, Buffer.concat([Buffer.from([0x10, 0x01]), ld(1, Buffer.from('str'))]))]));
  cases.push({ what: 'oneof: string after bool', body: ld(1, ld(2, ld(2, Buffer.concat([s1, oneofLast])))) });
  const unknown = Buffer.concat([s1, Buffer.from([0xf8, 0x07, 0x05]), ld(99, Buffer.from('ignored'))]);
  cases.push({ what: 'unknown fields', body: ld(1, Buffer.concat([ld(2, ld(2, unknown)), Buffer.from([0xa8, 0x1f, 0x01])])) });
  cases.push({ what: 'explicitly empty span id (read as absent)', body: ld(1, ld(2, ld(2, Buffer.concat([s1, ld(2, Buffer.alloc(0))])))) });
  cases.push({ what: 'invalid UTF-8 in a name', body: ld(1, ld(2, ld(2, Buffer.concat([s1, ld(5, Buffer.from([0x61, 0xff, 0xfe]))])))) });
  return cases;
}

/** mulberry32. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('decode-spans equals decodeProto + convertRequest on hand-made requests', () => {
  let spans = 0;
  let rejected = 0;
  for (const { what, body } of handMade()) {
    const o = same(body, what);
    if ('ok' in o) {
      spans += o.ok.spans.length;
      rejected += o.ok.rejected;
    }
  }
  // The cases reach both outcomes (a comparison of two empty results would prove nothing).
  assert.ok(spans > 30 && rejected > 15, `${spans} spans, ${rejected} rejected`);
});

test('decode-spans equals decodeProto + convertRequest on the real OTLP/protobuf exporter\'s bodies', async () => {
  const bodies = await captureBodies('proto', false, (i) => pipelineSpec(`p${i}`, 2, 2, 3, { 'ci.pipeline.url': 'https://ci.example/p', 'n.int': i, 'n.dbl': i + 0.5, 'n.bool': i % 2 === 0, 'n.arr': ['a', 'b'] }), 6);
  assert.ok(bodies.length > 0);
  let spans = 0;
  for (const [i, { body }] of bodies.entries()) {
    const o = same(body, `body ${i}`);
    assert.ok('ok' in o);
    spans += o.ok.spans.length;
  }
  assert.ok(spans >= 6 * 19, `${spans} spans`);
});

test('decode-spans equals decodeProto + convertRequest on seeded mutations', async (t) => {
  const seeds = [...handMade().map((c) => c.body), ...(await captureBodies('proto', false, (i) => pipelineSpec(`m${i}`, 1, 2, 2), 2)).map((b) => b.body)];
  const rnd = prng(Number(process.env.FUZZ_SEED ?? 20261202));
  const runs = Number(process.env.FUZZ_RUNS ?? 4000);
  const seen = { ok: 0, rejected: 0, error: 0 };
  for (let i = 0; i < runs; i++) {
    let body = Buffer.from(seeds[Math.floor(rnd() * seeds.length)]!);
    const kind = Math.floor(rnd() * 4);
    if (kind === 0) {
      const flips = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < flips; k++) body[Math.floor(rnd() * body.length)]! ^= 1 << Math.floor(rnd() * 8);
    } else if (kind === 1) {
      body = body.subarray(0, Math.floor(rnd() * body.length));
    } else if (kind === 2) {
      const at = Math.floor(rnd() * body.length);
      body[at] = Math.floor(rnd() * 256);
    } else {
      const a = Math.floor(rnd() * body.length);
      const b = Math.floor(rnd() * body.length);
      body = Buffer.concat([body.subarray(0, Math.min(a, b)), body.subarray(Math.max(a, b))]);
    }
    const o = same(body, `mutation ${i} (kind ${kind})`);
    if ('error' in o) seen.error++;
    else if (o.ok.rejected > 0) seen.rejected++;
    else seen.ok++;
  }
  t.diagnostic(JSON.stringify(seen));
  // Every outcome is reached many times.
  assert.ok(seen.ok > runs / 20 && seen.rejected > runs / 50 && seen.error > runs / 20, JSON.stringify(seen));
});
