// The receiver's pieces on their own: the generated descriptor matches the vendored .proto
// files, OTLP/JSON's encodings (hex IDs, enums as integers, 64-bit integers as strings or
// numbers), the parent's remoteness from the span flags, one resource object per ResourceSpans,
// the element and nesting bounds, and the built bin (dist/) decoding protobuf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { convertRequest, hrTimeFromHalves } from '../src/receiver/convert.js';
import { checkJsonShape, decodeJson } from '../src/receiver/decode-json.js';
import { decodeProto } from '../src/receiver/decode-proto.js';
import { RequestError } from '../src/receiver/limits.js';
import { otlpTypes } from '../src/receiver/proto.js';
import { generateDescriptorSource } from './support/otlp-descriptor-gen.js';
import { captureBodies, pipelineSpec, post } from './support/otlp-serve.js';

const root = fileURLToPath(new URL('../', import.meta.url));

test('the committed OTLP descriptor is generated from the vendored .proto files', () => {
  const path = `${root}src/receiver/otlp-descriptor.ts`;
  const fresh = generateDescriptorSource(root);
  if (process.env.UPDATE_OTLP_DESCRIPTOR === '1') writeFileSync(path, fresh);
  assert.equal(readFileSync(path, 'utf8'), fresh, 'run with UPDATE_OTLP_DESCRIPTOR=1 to regenerate');
  assert.ok(existsSync(`${root}vendor/opentelemetry-proto/LICENSE`));
  assert.ok(existsSync(`${root}vendor/googleapis/LICENSE`));
});

const T = '5B8EFFF798038103D269B633813FC60C';
const S = 'EEE19B7EC3C1B174';
const P = 'EEE19B7EC3C1B173';

test('OTLP/JSON: hex IDs, enums as integers, 64-bit integers as strings or numbers, snake_case names', () => {
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'ci.provider_name', value: { stringValue: 'jenkins' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: T, spanId: S, parentSpanId: P, name: 'build', kind: 2, flags: 0x301,
                startTimeUnixNano: '1544712660000000000', endTimeUnixNano: 1544712661000000000,
                status: { code: 2, message: 'boom' },
                attributes: [
                  { key: 'ci.level', value: { stringValue: 'job' } },
                  { key: 'n', value: { intValue: '42' } },
                  { key: 'd', value: { doubleValue: 1.5 } },
                  { key: 'b', value: { boolValue: true } },
                  { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { stringValue: 'b' }] } } },
                  { key: 'map', value: { kvlistValue: { values: [{ key: 'x', value: { intValue: 1 } }] } } },
                  { key: 'empty', value: {} },
                ],
                events: [{ name: 'exception', timeUnixNano: '1544712660500000000', attributes: [{ key: 'exception.message', value: { stringValue: 'bad' } }] }],
              },
              { trace_id: T, span_id: P, name: 'pipeline', start_time_unix_nano: '1544712650000000000', end_time_unix_nano: '1544712670000000000', status: { code: 'STATUS_CODE_OK' } },
            ],
          },
        ],
      },
      { resource: { attributes: [] }, scopeSpans: [{ spans: [{ traceId: T, spanId: '0000000000000001', name: 'other', startTimeUnixNano: 1, endTimeUnixNano: 2 }] }] },
    ],
  };
  const { spans, rejected } = convertRequest(decodeJson(Buffer.from(JSON.stringify(body)), 1000));
  assert.equal(rejected, 0);
  const [job, pipeline, other] = spans;
  assert.deepEqual(job!.spanContext(), { traceId: T.toLowerCase(), spanId: S.toLowerCase(), traceFlags: 1 });
  assert.deepEqual(job!.parentSpanContext, { traceId: T.toLowerCase(), spanId: P.toLowerCase(), traceFlags: 1, isRemote: true });
  assert.deepEqual(job!.startTime, [1544712660, 0]);
  assert.deepEqual(job!.endTime, [1544712661, 0]);
  assert.deepEqual(job!.status, { code: 2, message: 'boom' });
  assert.equal(job!.kind, 1, 'OTLP SPAN_KIND_SERVER (2) is the API SpanKind.SERVER (1)');
  assert.deepEqual(job!.attributes, { 'ci.level': 'job', n: 42, d: 1.5, b: true, arr: ['a', 'b'], map: '{"x":1}' });
  assert.deepEqual(job!.events, [{ name: 'exception', time: [1544712660, 500000000], attributes: { 'exception.message': 'bad' } }]);
  assert.equal(pipeline!.parentSpanContext, undefined);
  assert.deepEqual(pipeline!.status, { code: 1 });
  // One resource object per ResourceSpans, shared by its spans.
  assert.equal(job!.resource, pipeline!.resource);
  assert.notEqual(job!.resource, other!.resource);
  assert.deepEqual(job!.resource.attributes, { 'ci.provider_name': 'jenkins' });
});

test('protobuf from the real exporter decodes to the same spans as JSON from the real exporter', async () => {
  const spec = (i: number) => pipelineSpec(`same-${i}`, 1, 1, 2);
  const [proto] = await captureBodies('proto', false, spec, 1);
  const [json] = await captureBodies('json', false, spec, 1);
  const a = convertRequest(decodeProto(proto!.body, 1000)).spans;
  const b = convertRequest(decodeJson(json!.body, 1000)).spans;
  const shape = (s: (typeof a)[number]) => ({ name: s.name, attributes: s.attributes, status: s.status, kind: s.kind, hasParent: s.parentSpanContext !== undefined });
  assert.deepEqual(a.map(shape), b.map(shape));
  assert.equal(a.length, 5);
});

test('a span with bad IDs or times is rejected alone; remote parents from the flags', () => {
  const { request } = otlpTypes();
  const msg = request.fromObject({
    resourceSpans: [{ scopeSpans: [{ spans: [
      { traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), parentSpanId: Buffer.alloc(8, 3), flags: 0x100, name: 'local parent', startTimeUnixNano: 1, endTimeUnixNano: 2 },
      { traceId: Buffer.alloc(15, 1), spanId: Buffer.alloc(8, 2), name: 'short trace id', startTimeUnixNano: 1, endTimeUnixNano: 2 },
      { traceId: Buffer.alloc(16, 0), spanId: Buffer.alloc(8, 2), name: 'zero trace id', startTimeUnixNano: 1, endTimeUnixNano: 2 },
      { traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 4), name: 'no start' },
    ] }] }],
  });
  const out = convertRequest(decodeProto(request.encode(msg).finish(), 1000));
  assert.equal(out.spans.length, 1);
  assert.equal(out.spans[0]!.parentSpanContext!.isRemote, false);
  assert.equal(out.rejected, 3);
  assert.match(out.firstProblem!, /span "short trace id" .*trace_id must be 16 bytes, got 15/);
});

test('OTLP/JSON: a value of the wrong type rejects its span, naming the attribute', () => {
  const span = (name: string, value: unknown) => ({ traceId: T, spanId: S, name, startTimeUnixNano: '1', endTimeUnixNano: '2', attributes: [{ key: 'ci.flag', value }] });
  const body = { resourceSpans: [{ scopeSpans: [{ spans: [span('bad', { boolValue: 'yes' }), span('good', { boolValue: true })] }] }] };
  const out = convertRequest(decodeJson(Buffer.from(JSON.stringify(body)), 1000));
  assert.equal(out.spans.length, 1);
  assert.equal(out.rejected, 1);
  assert.match(out.firstProblem!, /span "bad" .*: attribute "ci\.flag": the value is not a boolean/);
});

test('bounds: messages per request, nesting, JSON containers', () => {
  const many = Buffer.alloc(2 * 1001, Buffer.from([0x0a, 0x00]));
  assert.doesNotThrow(() => decodeProto(many.subarray(0, 2000), 1000));
  assert.throws(() => decodeProto(many, 1000), (e: unknown) => e instanceof RequestError && e.status === 413);
  assert.throws(() => checkJsonShape(Buffer.from(`[${'{},'.repeat(1000)}{}]`), 1000), (e: unknown) => e instanceof RequestError && e.status === 413);
  assert.doesNotThrow(() => checkJsonShape(Buffer.from(`["[[[[{{{{", ${'{},'.repeat(998)}{}]`), 1000), 'brackets inside strings do not count');
  assert.throws(() => checkJsonShape(Buffer.from('['.repeat(500)), 10_000), (e: unknown) => e instanceof RequestError && e.status === 400);
  // A group wire type (none in OTLP) is malformed, not skipped recursively.
  assert.throws(() => decodeProto(Buffer.from([0x0b, 0x0b, 0x0b]), 1000), (e: unknown) => e instanceof RequestError && e.status === 400);
});

test('the built bin (dist/cli.js) serves OTLP/protobuf', { skip: !existsSync(`${root}dist/cli.js`) && 'dist/ not built (npm test builds it)' }, async (t) => {
  const child = spawn(process.execPath, [`${root}dist/cli.js`, 'serve', '--port', '0', '--endpoint', 'http://127.0.0.1:9/api/v2/ci/pipeline', '--shutdown-timeout-ms', '1000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error('exited before listening')));
  });
  const [real] = await captureBodies('proto', true, (i) => pipelineSpec(`dist-${i}`, 1, 1, 1), 1);
  const a = await post(url, real!.body, real!.headers);
  assert.equal(a.status, 200);
  assert.equal((await post(url, Buffer.from([0x0a, 0x09]), { 'Content-Type': 'application/x-protobuf' })).status, 400);
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
});

test('times: protobuf fixed64 halves give exactly the HrTime that the same decimal gives in JSON', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), (n) => {
      const hi = Number(n >> 32n);
      const lo = Number(n & 0xffffffffn);
      assert.deepEqual(hrTimeFromHalves(hi, lo), [Number(n / 1_000_000_000n), Number(n % 1_000_000_000n)]);
    }),
    { numRuns: 2000, examples: [[(1n << 64n) - 1n], [1n << 32n], [1_000_000_000n], [999_999_999n], [1_764_000_000_123_456_789n]] },
  );
  const { request } = otlpTypes();
  const start = 1_764_000_000_123_456_789n;
  const msg = request.fromObject({
    resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(T, 'hex'), spanId: Buffer.from(S, 'hex'), name: 't', startTimeUnixNano: String(start), endTimeUnixNano: String(start + 999_999_999_999n) }] }] }],
  });
  const viaProto = convertRequest(decodeProto(request.encode(msg).finish(), 1000)).spans[0]!;
  const body = { resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: T, spanId: S, name: 't', startTimeUnixNano: String(start), endTimeUnixNano: String(start + 999_999_999_999n) }] }] }] };
  const viaJson = convertRequest(decodeJson(Buffer.from(JSON.stringify(body)), 1000)).spans[0]!;
  assert.deepEqual(viaProto.startTime, [1_764_000_000, 123_456_789]);
  assert.deepEqual(viaProto.startTime, viaJson.startTime);
  assert.deepEqual(viaProto.endTime, viaJson.endTime);
});

test('protobuf strings: short ones recur through a cache and still decode exactly, request after request', () => {
  const { request } = otlpTypes();
  // Keys and values of every length around the cache's 32-byte bound, many of the same length
  // (slots are shared), non-ASCII too; each body is decoded twice, between other bodies.
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  fc.assert(
    fc.property(fc.array(fc.tuple(text, text), { minLength: 1, maxLength: 30 }), fc.array(fc.tuple(text, text), { maxLength: 30 }), (a, b) => {
      const encode = (pairs: Array<[string, string]>): Uint8Array =>
        request.encode(request.fromObject({
          resourceSpans: [{ scopeSpans: [{ spans: [{
            traceId: Buffer.from(T, 'hex'), spanId: Buffer.from(S, 'hex'), name: pairs[0]?.[0] ?? 'n', startTimeUnixNano: 1, endTimeUnixNano: 2,
            attributes: pairs.map(([key, value]) => ({ key, value: { stringValue: value } })),
          }] }] }],
        })).finish();
      const expected = (pairs: Array<[string, string]>): Record<string, string> => Object.fromEntries(pairs);
      const decode = (body: Uint8Array) => convertRequest(decodeProto(body, 1000)).spans[0]!;
      const [ba, bb] = [encode(a), encode(b)];
      for (const [body, pairs] of [[ba, a], [bb, b], [ba, a], [bb, b]] as const) {
        const span = decode(body);
        assert.deepEqual(span.attributes, expected(pairs));
        assert.equal(span.name, pairs[0]?.[0] ?? 'n');
      }
    }),
    // An attribute named __proto__ is kept as an own attribute (assigned, it would set the prototype).
    { numRuns: 300, examples: [[[['__proto__', 'v'], ['ci.level', 'step']], [['ci.level', 'job']]]] },
  );
  // A short string with invalid UTF-8 is refused, also once a valid string of its length is cached.
  const ok = request.encode(request.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: Buffer.from(T, 'hex'), spanId: Buffer.from(S, 'hex'), name: 'abc', startTimeUnixNano: 1, endTimeUnixNano: 2 }] }] }] })).finish();
  assert.equal(convertRequest(decodeProto(ok, 1000)).spans[0]!.name, 'abc');
  const bad = Buffer.from(ok);
  bad[bad.indexOf(Buffer.from('abc')) + 1] = 0xff;
  assert.throws(() => decodeProto(bad, 1000), (e: unknown) => e instanceof RequestError && e.status === 400 && /UTF-8|encoded data/i.test(e.message));
  assert.equal(convertRequest(decodeProto(ok, 1000)).spans[0]!.name, 'abc');
});

test('protobuf AnyValue: every kind of value decodes (its oneof is read as plain fields)', () => {
  const { request } = otlpTypes();
  const kv = (key: string, value: object) => ({ key, value });
  const msg = request.fromObject({
    resourceSpans: [{ scopeSpans: [{ spans: [{
      traceId: Buffer.from(T, 'hex'), spanId: Buffer.from(S, 'hex'), name: 'kinds', startTimeUnixNano: 1, endTimeUnixNano: 2,
      attributes: [
        kv('s', { stringValue: 'héllo ✓' }), kv('r', { stringValue: 'a \uFFFD replacement character, sent as such' }), kv('b', { boolValue: false }), kv('i', { intValue: -7 }), kv('d', { doubleValue: 1.5 }),
        kv('a', { arrayValue: { values: [{ stringValue: 'x' }, { stringValue: 'y' }] } }),
        kv('m', { kvlistValue: { values: [kv('k', { intValue: 1 })] } }), kv('y', { bytesValue: Buffer.from([1, 2, 3]) }), kv('e', {}),
      ],
    }] }] }],
  });
  const [span] = convertRequest(decodeProto(request.encode(msg).finish(), 1000)).spans;
  assert.deepEqual(span!.attributes, { s: 'héllo ✓', r: 'a \uFFFD replacement character, sent as such', b: false, i: -7, d: 1.5, a: ['x', 'y'], m: '{"k":1}', y: 'AQID' });
  // Each decoded AnyValue holds `value` (which member is set) as a plain own property: through
  // protobufjs' prototype setter, every assignment deleted the other members (src/receiver/proto.ts).
  const decoded = request.decode(request.encode(msg).finish()) as unknown as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ attributes: Array<{ value: object }> }> }> }> };
  const value = decoded.resourceSpans[0]!.scopeSpans[0]!.spans[0]!.attributes[0]!.value;
  assert.equal(Object.getOwnPropertyDescriptor(value, 'value')?.value, 'stringValue');
  // Invalid UTF-8 in a string is still refused before anything is decoded.
  const bad = Buffer.from(request.encode(msg).finish());
  const at = bad.indexOf(Buffer.from('héllo'));
  bad[at + 1] = 0xff;
  assert.throws(() => decodeProto(bad, 1000), (e: unknown) => e instanceof RequestError && e.status === 400);
});
