// OTLP/protobuf → ReceivedSpans in one walk, for `serve`'s hot path. protobufjs' generated
// decode builds a message object per span, key-value, AnyValue (with a oneof setter that deletes
// its siblings), Long per time, Buffer per ID, and convert.ts then reads that tree into the light
// span shape: two object graphs per span, most of serve's CPU and its GC. Here protobufjs'
// Reader (its varints, fixed64, strings) reads the wire straight into the light shape,
// with the field numbers taken from the same official message types (proto.ts), never written
// by hand. It runs only after decode-proto.ts' scan has checked the body (lengths, wire types,
// nesting, the element cap), and its result is exactly `convertRequest(decodeProto(body))`'s —
// same spans, same rejections in the same order, same messages; test/receiver-decode.test.ts
// compares the two on real exporters' bodies, every AnyValue kind and seeded mutations.
//
// What protobufjs' decode does and this keeps: the last occurrence of a scalar wins; a repeated
// singular message is merged into the first (a second `status` updates the first, a second
// `resource` appends its attributes); an AnyValue is the last of its oneof members; absent
// fields read as their defaults (an absent or zero time is "missing"); unknown fields are
// skipped; a string that is not UTF-8 anywhere in the body makes it malformed (the scan checks
// them all, so strings are read here without a second check).
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import { arrayAttribute, describeSpan, FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE, ReceivedSpan, type Converted, type Primitive } from './convert.js';
import { malformed, scanProto } from './decode-proto.js';
import { RequestError } from './limits.js';
import { otlpTypes, protobuf, type ProtoType } from './proto.js';

type Reader = protobuf.Reader;

/** Field numbers by message, read from the official types once. */
interface Numbers {
  req: { resourceSpans: number };
  rs: { resource: number; scopeSpans: number };
  resource: { attributes: number };
  ss: { spans: number };
  span: {
    traceId: number; spanId: number; parentSpanId: number; flags: number; name: number; kind: number;
    startTimeUnixNano: number; endTimeUnixNano: number; attributes: number; events: number; links: number; status: number;
  };
  event: { timeUnixNano: number; name: number; attributes: number };
  link: { traceId: number; spanId: number; attributes: number };
  status: { message: number; code: number };
  kv: { key: number; value: number };
  any: { stringValue: number; boolValue: number; intValue: number; doubleValue: number; arrayValue: number; kvlistValue: number; bytesValue: number };
  array: { values: number };
  kvlist: { values: number };
}

let numbers: Numbers | undefined;

function idsOf<K extends string>(type: ProtoType, names: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const n of names) {
    const f = type.fields[n];
    if (!f) throw new Error(`OTLP descriptor: ${type.name} has no field ${n}`);
    out[n] = f.id;
  }
  return out;
}

function sub(type: ProtoType, name: string): ProtoType {
  const t = type.fields[name]?.resolvedType;
  if (!(t instanceof protobuf.Type)) throw new Error(`OTLP descriptor: ${type.name}.${name} is not a message`);
  return t;
}

function fieldNumbers(): Numbers {
  if (numbers) return numbers;
  const { request } = otlpTypes();
  const rs = sub(request, 'resourceSpans');
  const ss = sub(rs, 'scopeSpans');
  const span = sub(ss, 'spans');
  const kv = sub(span, 'attributes');
  const any = sub(kv, 'value');
  numbers = {
    req: idsOf(request, ['resourceSpans']),
    rs: idsOf(rs, ['resource', 'scopeSpans']),
    resource: idsOf(sub(rs, 'resource'), ['attributes']),
    ss: idsOf(ss, ['spans']),
    span: idsOf(span, ['traceId', 'spanId', 'parentSpanId', 'flags', 'name', 'kind', 'startTimeUnixNano', 'endTimeUnixNano', 'attributes', 'events', 'links', 'status']),
    event: idsOf(sub(span, 'events'), ['timeUnixNano', 'name', 'attributes']),
    link: idsOf(sub(span, 'links'), ['traceId', 'spanId', 'attributes']),
    status: idsOf(sub(span, 'status'), ['message', 'code']),
    kv: idsOf(kv, ['key', 'value']),
    any: idsOf(any, ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue']),
    array: idsOf(sub(any, 'arrayValue'), ['values']),
    kvlist: idsOf(sub(any, 'kvlistValue'), ['values']),
  };
  return numbers;
}

class SpanProblem extends Error {}

/** A bytes field as a view: start and length in the body (length 0 when absent). */
interface Bytes {
  start: number;
  len: number;
}
const ABSENT: Bytes = { start: -1, len: 0 };

function readBytes(r: Reader): Bytes {
  const len = r.uint32();
  const start = r.pos;
  r.pos += len;
  return { start, len };
}

/**
 * The last trace ID made into hex, and its bytes: the spans of a request mostly share their
 * trace, so most trace IDs are this one again (one compare instead of a hex string; and the
 * exporter's lookups by trace ID then meet one string, not many equal ones).
 */
const lastTraceBytes = Buffer.alloc(16);
let lastTraceHex = '';

/** convert.ts' idHex for protobuf bytes: '' when absent or empty, else lowercase hex of the right length, not all zeros. */
function idHex(buf: Buffer, start: number, len: number, bytes: number, what: string): string {
  if (len === 0) return '';
  if (len !== bytes) throw new SpanProblem(`${what} must be ${bytes} bytes, got ${len}`);
  let zero = true;
  for (let i = start; i < start + len; i++) {
    if (buf[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) throw new SpanProblem(`${what} is all zeros`);
  if (len === 16) {
    let i = 0;
    while (i < 16 && lastTraceBytes[i] === buf[start + i]) i++;
    if (i === 16 && lastTraceHex !== '') return lastTraceHex;
    buf.copy(lastTraceBytes, 0, start, start + 16);
    lastTraceHex = buf.toString('hex', start, start + 16);
    return lastTraceHex;
  }
  return buf.toString('hex', start, start + len);
}

/**
 * A fixed64 nanosecond time as its two 32-bit halves → HrTime; 0 (or absent) is missing. Today's
 * times are past 2^53 ns, so the split is done in parts that stay exact in doubles (no BigInt):
 * hi·2^32 = hi·4·10^9 + hi·294,967,296, and with hi = a·2^16 + b,
 * hi·294,967,296 = a·19,330·10^9 + a·976,710,656 + b·294,967,296.
 */
function hrTime(lo: number, hi: number, what: string): HrTime {
  if (lo === 0 && hi === 0) throw new SpanProblem(`${what} is missing`);
  const a = Math.floor(hi / 65536);
  const b = hi - a * 65536;
  const rem = a * 976_710_656 + b * 294_967_296 + lo; // < 2^47: exact
  const ns = rem % 1e9;
  return [hi * 4 + a * 19_330 + (rem - ns) / 1e9, ns];
}

/** int64 as convert.ts' int() reads protobufjs' value (a Long, or a number without long.js). */
function int64(r: Reader): number {
  const v = r.int64() as unknown as number | { low: number; high: number };
  return typeof v === 'number' ? v : v.high * 4294967296 + (v.low >>> 0);
}

/**
 * Short strings by their bytes. Attribute keys (and many values: levels, statuses, providers)
 * repeat from span to span; a hit skips the UTF-8 decode, and returns a string V8 has already
 * made a property key. A fixed table (slot by FNV-1a hash, the bytes kept to compare), so its
 * memory is bounded whatever the input. The scan has checked that every string is UTF-8.
 */
const CACHE_SLOTS = 2048;
const CACHE_MAX = 40;
const cacheStrings: Array<string | undefined> = new Array<string | undefined>(CACHE_SLOTS).fill(undefined);
const cacheLens = new Uint8Array(CACHE_SLOTS);
const cacheBytes = Buffer.alloc(CACHE_SLOTS * CACHE_MAX);

function readString(r: Reader, buf: Buffer): string {
  const len = r.uint32();
  const start = r.pos;
  const end = start + len;
  r.pos = end;
  if (len === 0) return '';
  if (len > CACHE_MAX) return buf.toString('utf8', start, end);
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h >>> 0) % CACHE_SLOTS;
  const cached = cacheStrings[slot];
  const o = slot * CACHE_MAX;
  if (cached !== undefined && cacheLens[slot] === len) {
    let i = 0;
    while (i < len && cacheBytes[o + i] === buf[start + i]) i++;
    if (i === len) return cached;
  }
  const str = buf.toString('utf8', start, end);
  cacheStrings[slot] = str;
  cacheLens[slot] = len;
  buf.copy(cacheBytes, o, start, end);
  return str;
}

type Value = Primitive | Primitive[] | undefined;

/**
 * An AnyValue being read. protobufjs merges a repeated singular message into the first (a
 * KeyValue's second `value` updates its AnyValue; a second `array_value` appends to the
 * first's values), and setting one member of the oneof drops the others: `member` is the last
 * member set, `array`/`kvlist` what its occurrences have gathered.
 */
interface AnyState {
  member: number;
  scalar: Primitive | undefined;
  array: Value[] | undefined;
  kvlist: Array<[string, Value]> | undefined;
}

function readAny(r: Reader, buf: Buffer, end: number, n: Numbers, st: AnyState): void {
  const a = n.any;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === a.stringValue) st.scalar = readString(r, buf);
    else if (no === a.boolValue) st.scalar = r.bool();
    else if (no === a.intValue) st.scalar = int64(r);
    else if (no === a.doubleValue) st.scalar = r.double();
    else if (no === a.bytesValue) {
      const b = readBytes(r);
      st.scalar = buf.toString('base64', b.start, b.start + b.len);
    } else if (no === a.arrayValue) {
      const e = r.uint32() + r.pos;
      const out = st.member === no && st.array ? st.array : [];
      while (r.pos < e) {
        const t = r.uint32();
        if (t >>> 3 === n.array.values) {
          const ve = r.uint32() + r.pos;
          const el: AnyState = { member: 0, scalar: undefined, array: undefined, kvlist: undefined };
          readAny(r, buf, ve, n, el);
          out.push(valueOf(el, n));
          r.pos = ve;
        } else r.skipType(t & 7);
      }
      st.array = out;
    } else if (no === a.kvlistValue) {
      const e = r.uint32() + r.pos;
      const out = st.member === no && st.kvlist ? st.kvlist : [];
      while (r.pos < e) {
        const t = r.uint32();
        if (t >>> 3 === n.kvlist.values) {
          const ke = r.uint32() + r.pos;
          out.push(keyValue(r, buf, ke, n));
          r.pos = ke;
        } else r.skipType(t & 7);
      }
      st.kvlist = out;
    } else {
      r.skipType(tag & 7);
      continue;
    }
    st.member = no;
  }
}

/** convert.ts' anyValue of what protobufjs would have decoded. */
function valueOf(st: AnyState, n: Numbers): Value {
  if (st.member === 0) return undefined;
  if (st.member === n.any.arrayValue) return arrayAttribute(st.array!);
  if (st.member === n.any.kvlistValue) {
    // Built like convert.ts builds it (a plain object, keys assigned in order) for the same JSON.
    const out: Record<string, unknown> = {};
    for (const [k, v] of st.kvlist!) out[k] = v;
    return JSON.stringify(out);
  }
  return st.scalar;
}

function keyValue(r: Reader, buf: Buffer, end: number, n: Numbers): [string, Value] {
  let key = '';
  let value: AnyState | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === n.kv.key) key = readString(r, buf);
    else if (no === n.kv.value) {
      const e = r.uint32() + r.pos;
      value ??= { member: 0, scalar: undefined, array: undefined, kvlist: undefined };
      readAny(r, buf, e, n, value);
      r.pos = e;
    } else r.skipType(tag & 7);
  }
  return [key, value === undefined ? undefined : valueOf(value, n)];
}

/** One repeated KeyValue element into `out` (the later of a repeated key wins; an empty value is skipped). */
function attribute(r: Reader, buf: Buffer, end: number, n: Numbers, out: Attributes): void {
  // keyValue() without its pair: one allocation less per attribute, the most frequent message.
  let key = '';
  let st: AnyState | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === n.kv.key) key = readString(r, buf);
    else if (no === n.kv.value) {
      const e = r.uint32() + r.pos;
      st ??= { member: 0, scalar: undefined, array: undefined, kvlist: undefined };
      readAny(r, buf, e, n, st);
      r.pos = e;
    } else r.skipType(tag & 7);
  }
  const value = st === undefined ? undefined : valueOf(st, n);
  if (value !== undefined) out[key] = value as AttributeValue;
}

interface RawEvent {
  name: string;
  lo: number;
  hi: number;
  attributes: Attributes;
}
interface RawLink {
  traceId: Bytes;
  spanId: Bytes;
  attributes: Attributes;
}

function span(r: Reader, buf: Buffer, end: number, n: Numbers, resource: { attributes: Attributes }, out: Converted): void {
  const f = n.span;
  let name = '';
  // The IDs as (start, length) in the body; length 0 is absent or empty.
  let traceAt = 0;
  let traceLen = 0;
  let spanAt = 0;
  let spanLen = 0;
  let parentAt = 0;
  let parentLen = 0;
  let flags = 0;
  let kind = 0;
  let startLo = 0;
  let startHi = 0;
  let endLo = 0;
  let endHi = 0;
  let status: { code: number; message: string } | undefined;
  const attributes: Attributes = {};
  let events: RawEvent[] | undefined;
  let links: RawLink[] | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === f.attributes) {
      const e = r.uint32() + r.pos;
      attribute(r, buf, e, n, attributes);
      r.pos = e;
    } else if (no === f.name) name = r.string();
    else if (no === f.traceId) {
      traceLen = r.uint32();
      traceAt = r.pos;
      r.pos += traceLen;
    } else if (no === f.spanId) {
      spanLen = r.uint32();
      spanAt = r.pos;
      r.pos += spanLen;
    } else if (no === f.parentSpanId) {
      parentLen = r.uint32();
      parentAt = r.pos;
      r.pos += parentLen;
    }
    else if (no === f.flags) flags = r.fixed32();
    else if (no === f.kind) kind = r.int32();
    else if (no === f.startTimeUnixNano) {
      startLo = r.fixed32();
      startHi = r.fixed32();
    } else if (no === f.endTimeUnixNano) {
      endLo = r.fixed32();
      endHi = r.fixed32();
    } else if (no === f.status) {
      const e = r.uint32() + r.pos;
      // A second status is merged into the first, as protobufjs does.
      const st = (status ??= { code: 0, message: '' });
      while (r.pos < e) {
        const t = r.uint32();
        if (t >>> 3 === n.status.code) st.code = r.int32();
        else if (t >>> 3 === n.status.message) st.message = r.string();
        else r.skipType(t & 7);
      }
    } else if (no === f.events) {
      const e = r.uint32() + r.pos;
      const ev: RawEvent = { name: '', lo: 0, hi: 0, attributes: {} };
      while (r.pos < e) {
        const t = r.uint32();
        const k = t >>> 3;
        if (k === n.event.attributes) {
          const ae = r.uint32() + r.pos;
          attribute(r, buf, ae, n, ev.attributes);
          r.pos = ae;
        } else if (k === n.event.name) ev.name = r.string();
        else if (k === n.event.timeUnixNano) {
          ev.lo = r.fixed32();
          ev.hi = r.fixed32();
        } else r.skipType(t & 7);
      }
      (events ??= []).push(ev);
    } else if (no === f.links) {
      const e = r.uint32() + r.pos;
      const l: RawLink = { traceId: ABSENT, spanId: ABSENT, attributes: {} };
      while (r.pos < e) {
        const t = r.uint32();
        const k = t >>> 3;
        if (k === n.link.attributes) {
          const ae = r.uint32() + r.pos;
          attribute(r, buf, ae, n, l.attributes);
          r.pos = ae;
        } else if (k === n.link.traceId) l.traceId = readBytes(r);
        else if (k === n.link.spanId) l.spanId = readBytes(r);
        else r.skipType(t & 7);
      }
      (links ??= []).push(l);
    } else r.skipType(tag & 7);
  }
  // The checks in convert.ts' order, so that the first problem named is the same.
  try {
    const tid = idHex(buf, traceAt, traceLen, 16, 'trace_id');
    const sid = idHex(buf, spanAt, spanLen, 8, 'span_id');
    if (tid === '') throw new SpanProblem('trace_id is missing');
    if (sid === '') throw new SpanProblem('span_id is missing');
    const pid = idHex(buf, parentAt, parentLen, 8, 'parent_span_id');
    const traceFlags = flags & 0xff;
    const parent = pid === ''
      ? undefined
      : (flags & FLAG_HAS_IS_REMOTE) !== 0
        ? { traceId: tid, spanId: pid, traceFlags, isRemote: (flags & FLAG_IS_REMOTE) !== 0 }
        : { traceId: tid, spanId: pid, traceFlags };
    const start = hrTime(startLo, startHi, 'start_time_unix_nano');
    const endTime = hrTime(endLo, endHi, 'end_time_unix_nano');
    let st: { code: number; message?: string } = { code: 0 };
    if (status) {
      const code = status.code >= 0 && status.code <= 2 ? status.code : 0;
      st = status.message === '' ? { code } : { code, message: status.message };
    }
    const evs = events ? events.map((e) => ({ name: e.name, time: hrTime(e.lo, e.hi, 'event time_unix_nano'), attributes: e.attributes })) : [];
    const lks = links
      ? links.map((l) => ({
          context: { traceId: idHex(buf, l.traceId.start, l.traceId.len, 16, 'link trace_id'), spanId: idHex(buf, l.spanId.start, l.spanId.len, 8, 'link span_id') },
          attributes: l.attributes,
        }))
      : [];
    out.spans.push(new ReceivedSpan(name, { traceId: tid, spanId: sid, traceFlags }, parent, start, endTime, st, attributes, evs, resource, kind > 0 ? kind - 1 : 0, lks));
  } catch (err) {
    if (!(err instanceof SpanProblem)) throw err;
    out.rejected++;
    if (out.firstProblem === undefined) {
      // describeSpan reads what protobufjs would have made: an absent or empty ID is its
      // default, not bytes ('?').
      const view = (at: number, len: number): Uint8Array | undefined => (len === 0 ? undefined : buf.subarray(at, at + len));
      out.firstProblem = `${describeSpan({ name, traceId: view(traceAt, traceLen), spanId: view(spanAt, spanLen) })}: ${err.message}`;
    }
  }
}

function resourceSpans(r: Reader, buf: Buffer, end: number, n: Numbers, out: Converted): void {
  // The resource applies to every span of the entry wherever it sits on the wire, so the
  // scope_spans are read after it.
  const resources: number[] = [];
  const scopes: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === n.rs.resource || no === n.rs.scopeSpans) {
      const e = r.uint32() + r.pos;
      (no === n.rs.resource ? resources : scopes).push(r.pos, e);
      r.pos = e;
    } else r.skipType(tag & 7);
  }
  const resource = { attributes: {} as Attributes };
  // A repeated resource is merged into the first (its attributes appended), as protobufjs does.
  for (let i = 0; i < resources.length; i += 2) {
    r.pos = resources[i]!;
    const resEnd = resources[i + 1]!;
    while (r.pos < resEnd) {
      const tag = r.uint32();
      if (tag >>> 3 === n.resource.attributes) {
        const e = r.uint32() + r.pos;
        attribute(r, buf, e, n, resource.attributes);
        r.pos = e;
      } else r.skipType(tag & 7);
    }
  }
  for (let i = 0; i < scopes.length; i += 2) {
    r.pos = scopes[i]!;
    const se = scopes[i + 1]!;
    while (r.pos < se) {
      const tag = r.uint32();
      if (tag >>> 3 === n.ss.spans) {
        const e = r.uint32() + r.pos;
        span(r, buf, e, n, resource, out);
        r.pos = e;
      } else r.skipType(tag & 7);
    }
  }
  r.pos = end;
}

/**
 * Body bytes → spans, as `convertRequest(decodeProto(body, maxElements))` would make them; a
 * RequestError (400/413) for a body that is not a well-formed request.
 */
export function decodeProtoSpans(body: Uint8Array, maxElements: number): Converted {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length);
  scanProto(buf, maxElements);
  const n = fieldNumbers();
  const out: Converted = { spans: [], rejected: 0 };
  const r = protobuf.Reader.create(buf);
  try {
    while (r.pos < buf.length) {
      const tag = r.uint32();
      if (tag >>> 3 === n.req.resourceSpans) {
        const e = r.uint32() + r.pos;
        resourceSpans(r, buf, e, n, out);
        r.pos = e;
      } else r.skipType(tag & 7);
    }
  } catch (err) {
    // The scan has checked what could fail here; were something to slip through, it is the
    // body's fault, not the server's.
    if (err instanceof RequestError) throw err;
    throw malformed(err instanceof Error ? err.message : 'cannot be read');
  }
  return out;
}

