// Decoded OTLP request (from protobuf or JSON) → light span objects the exporter accepts (the
// SpanData shape of src/mapping/transform.ts): no SDK span objects are built. Each ResourceSpans
// gets one resource object, shared by its spans, so the exporter's per-resource cache and the
// resource's `ci.*` attributes apply exactly as they do in process.
//
// Protobuf input is well-typed by construction; JSON input can hold anything, so every read is
// checked. A span that cannot be a span (bad IDs or times, a field of the wrong type) is
// rejected and counted for `partial_success`; a request whose structure is wrong is a 400.
import type { Attributes, AttributeValue, HrTime } from '@opentelemetry/api';
import { quote } from '../diagnostics.js';
import { setOwn } from '../mapping/attributes.js';
import type { SpanData } from '../mapping/transform.js';
import { MAX_DEPTH, RequestError } from './limits.js';

type Obj = Record<string, unknown>;

/** OTLP span flags: bit 8 says the parent's remoteness is known, bit 9 that it is remote. */
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

/** A received span: what the exporter reads of a ReadableSpan, and nothing more. */
export class ReceivedSpan implements SpanData {
  constructor(
    readonly name: string,
    private readonly context: { traceId: string; spanId: string; traceFlags: number },
    readonly parentSpanContext: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean } | undefined,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly status: { code: number; message?: string },
    readonly attributes: Attributes,
    readonly events: ReadonlyArray<{ name: string; time: HrTime; attributes?: Attributes }>,
    readonly resource: { attributes: Attributes },
    readonly kind: number,
    /** Links to other spans (a GitHub run attempt links to the previous attempt's trace). */
    readonly links: ReadonlyArray<{ context: { traceId: string; spanId: string }; attributes: Attributes }> = [],
  ) {}

  spanContext(): { traceId: string; spanId: string; traceFlags: number } {
    return this.context;
  }
}

export interface Converted {
  spans: ReceivedSpan[];
  rejected: number;
  /** The first rejection, for partial_success.error_message and the log. */
  firstProblem?: string;
}

class SpanProblem extends Error {}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** A field by its lowerCamelCase name (protobuf and OTLP/JSON) or, for JSON, its proto name. */
function field(o: Obj, camel: string, snake: string): unknown {
  const v = o[camel];
  return v !== undefined ? v : o[snake];
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SpanProblem(`${what} is not a list`);
  return v;
}

const HEX = /^[0-9a-fA-F]*$/;
const ZEROS = /^0+$/;

/** A trace/span ID: bytes (protobuf) or hex (OTLP/JSON) → lowercase hex of `bytes` bytes, '' if empty. */
function idHex(v: unknown, bytes: number, what: string): string {
  // protobufjs' default for an absent bytes field is an empty array (on the prototype).
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return '';
  let hex: string;
  if (v instanceof Uint8Array) {
    if (v.length === 0) return '';
    if (v.length !== bytes) throw new SpanProblem(`${what} must be ${bytes} bytes, got ${v.length}`);
    // protobufjs' Node reader hands out Buffers: no view to make for them.
    hex = (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length)).toString('hex');
  } else if (typeof v === 'string') {
    if (v === '') return '';
    if (!HEX.test(v)) throw new SpanProblem(`${what} ${quote(v, 40)} is not hex`);
    hex = v.toLowerCase();
  } else {
    throw new SpanProblem(`${what} is not a hex string`);
  }
  if (hex.length !== bytes * 2) throw new SpanProblem(`${what} must be ${bytes} bytes, got ${hex.length / 2}`);
  if (ZEROS.test(hex)) throw new SpanProblem(`${what} is all zeros`);
  return hex;
}

const DIGITS = /^\d{1,20}$/;
const NS = 1_000_000_000n;

/**
 * An unsigned 64-bit count of nanoseconds given as its two 32-bit halves → HrTime, exactly and
 * without BigInt (two of these per span were a visible part of serve's conversion). With
 * hi = h1·2¹⁶ + h0 and 2³² = 4·10⁹ + 294,967,296, 2¹⁶·294,967,296 = 19,330·10⁹ + 976,710,656:
 * every partial product below stays under 2⁵³.
 */
export function hrTimeFromHalves(hi: number, lo: number): HrTime {
  const h1 = hi >>> 16;
  const h0 = hi & 0xffff;
  const rest = h1 * 976_710_656 + h0 * 294_967_296 + lo;
  const carry = Math.floor(rest / 1e9);
  return [4 * hi + h1 * 19_330 + carry, rest - carry * 1e9];
}

/** A fixed64 nanosecond time (Long, number, or a decimal string in JSON) → HrTime. */
function hrTime(v: unknown, what: string): HrTime {
  if (typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number' && typeof (v as { high?: unknown }).high === 'number') {
    const l = v as { low: number; high: number };
    if (l.low === 0 && l.high === 0) throw new SpanProblem(`${what} is missing`);
    return hrTimeFromHalves(l.high >>> 0, l.low >>> 0);
  }
  let n: bigint;
  if (v === undefined || v === null) n = 0n;
  else if (typeof v === 'number' && Number.isFinite(v) && v >= 0) n = BigInt(Math.trunc(v));
  else if (typeof v === 'string' && DIGITS.test(v)) n = BigInt(v);
  else throw new SpanProblem(`${what} is not a number of nanoseconds`);
  if (n === 0n) throw new SpanProblem(`${what} is missing`);
  return [Number(n / NS), Number(n % NS)];
}

function int(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return Number(v);
  if (typeof v === 'object' && typeof (v as { low?: unknown }).low === 'number') {
    const l = v as { low: number; high: number; unsigned?: boolean };
    return l.high * 4294967296 + (l.low >>> 0);
  }
  throw new SpanProblem(`${what} is not an integer`);
}

function str(v: unknown, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new SpanProblem(`${what} is not a string`);
  return v;
}

/** Status codes by number and, leniently, by their proto names. */
const STATUS_NAMES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

function enumValue(v: unknown, names: Record<string, number>, what: string): number {
  if (typeof v === 'string' && Object.hasOwn(names, v)) return names[v]!;
  return int(v, what);
}

type Primitive = string | number | boolean;

/** AnyValue → a primitive, or for arrays/maps/bytes something that fits an attribute. */
function anyValue(v: unknown, depth: number, what: string): Primitive | Primitive[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw new SpanProblem(`${what} is not an AnyValue`);
  if (depth > MAX_DEPTH) throw new SpanProblem(`${what} nests deeper than ${MAX_DEPTH}`);
  // Most values are strings: one own-property read settles them.
  const sv = Object.hasOwn(v, 'stringValue') ? v.stringValue : undefined;
  if (typeof sv === 'string') return sv;
  if (Object.hasOwn(v, 'stringValue') || Object.hasOwn(v, 'string_value')) return str(field(v, 'stringValue', 'string_value'), what);
  if (Object.hasOwn(v, 'boolValue') || Object.hasOwn(v, 'bool_value')) {
    const b = field(v, 'boolValue', 'bool_value');
    if (typeof b !== 'boolean') throw new SpanProblem(`${what} is not a boolean`);
    return b;
  }
  if (Object.hasOwn(v, 'intValue') || Object.hasOwn(v, 'int_value')) return int(field(v, 'intValue', 'int_value'), what);
  if (Object.hasOwn(v, 'doubleValue') || Object.hasOwn(v, 'double_value')) {
    const d = field(v, 'doubleValue', 'double_value');
    if (typeof d === 'number') return d;
    if (typeof d === 'string' && d !== '' && !Number.isNaN(Number(d))) return Number(d);
    throw new SpanProblem(`${what} is not a number`);
  }
  if (Object.hasOwn(v, 'arrayValue') || Object.hasOwn(v, 'array_value')) {
    const arr = field(v, 'arrayValue', 'array_value');
    const values = isObj(arr) ? list(arr.values, what) : [];
    const out = values.map((x) => anyValue(x, depth + 1, what));
    // Attributes hold arrays of one primitive type; anything else is kept as its JSON.
    const first = out.find((x) => x !== undefined);
    if (out.every((x) => x === undefined || (!Array.isArray(x) && typeof x === typeof first))) return out.filter((x) => x !== undefined) as Primitive[];
    return JSON.stringify(out);
  }
  if (Object.hasOwn(v, 'kvlistValue') || Object.hasOwn(v, 'kvlist_value')) {
    const kv = field(v, 'kvlistValue', 'kvlist_value');
    const out: Record<string, unknown> = {};
    for (const e of isObj(kv) ? list(kv.values, what) : []) {
      if (!isObj(e)) throw new SpanProblem(`${what} holds an entry that is not a key-value`);
      setOwn(out, str(e.key, what), anyValue(e.value, depth + 1, what));
    }
    return JSON.stringify(out);
  }
  if (Object.hasOwn(v, 'bytesValue') || Object.hasOwn(v, 'bytes_value')) {
    const b = field(v, 'bytesValue', 'bytes_value');
    if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.length).toString('base64');
    return str(b, what);
  }
  return undefined;
}

function attributes(v: unknown, what: string): Attributes {
  const out: Attributes = {};
  if (v === undefined || v === null) return out;
  if (!Array.isArray(v)) throw new SpanProblem(`${what} is not a list`);
  for (let i = 0; i < v.length; i++) {
    const kv: unknown = v[i];
    if (!isObj(kv)) throw new SpanProblem(`${what} holds an entry that is not a key-value`);
    const key = kv.key;
    if (typeof key !== 'string') throw new SpanProblem(`${what} holds a key that is not a string`);
    let value: Primitive | Primitive[] | undefined;
    try {
      value = anyValue(kv.value, 1, 'the value');
    } catch (err) {
      // The message names the attribute only when there is a problem: quoting every key would
      // cost more than reading the value.
      if (err instanceof SpanProblem) throw new SpanProblem(`attribute ${quote(key, 80)}: ${err.message}`);
      throw err;
    }
    if (value !== undefined) setOwn(out, key, value as AttributeValue);
  }
  return out;
}

function convertSpan(s: unknown, resource: { attributes: Attributes }): ReceivedSpan {
  if (!isObj(s)) throw new SpanProblem('a span is not an object');
  const name = str(s.name, 'name');
  const traceId = idHex(field(s, 'traceId', 'trace_id'), 16, 'trace_id');
  const spanId = idHex(field(s, 'spanId', 'span_id'), 8, 'span_id');
  if (traceId === '') throw new SpanProblem('trace_id is missing');
  if (spanId === '') throw new SpanProblem('span_id is missing');
  const parentId = idHex(field(s, 'parentSpanId', 'parent_span_id'), 8, 'parent_span_id');
  const flags = int(s.flags, 'flags');
  const traceFlags = flags & 0xff;
  const parent = parentId === ''
    ? undefined
    : (flags & FLAG_HAS_IS_REMOTE) !== 0
      ? { traceId, spanId: parentId, traceFlags, isRemote: (flags & FLAG_IS_REMOTE) !== 0 }
      : { traceId, spanId: parentId, traceFlags };
  const start = hrTime(field(s, 'startTimeUnixNano', 'start_time_unix_nano'), 'start_time_unix_nano');
  const end = hrTime(field(s, 'endTimeUnixNano', 'end_time_unix_nano'), 'end_time_unix_nano');
  const st = s.status;
  let status: { code: number; message?: string } = { code: 0 };
  if (st !== undefined && st !== null) {
    if (!isObj(st)) throw new SpanProblem('status is not an object');
    const code = enumValue(st.code, STATUS_NAMES, 'status.code');
    const message = str(st.message, 'status.message');
    status = message === '' ? { code: code >= 0 && code <= 2 ? code : 0 } : { code: code >= 0 && code <= 2 ? code : 0, message };
  }
  const events = list(s.events, 'events').map((e) => {
    if (!isObj(e)) throw new SpanProblem('an event is not an object');
    const t = field(e, 'timeUnixNano', 'time_unix_nano');
    return { name: str(e.name, 'event name'), time: t === undefined || t === null ? start : hrTime(t, 'event time_unix_nano'), attributes: attributes(e.attributes, 'event attributes') };
  });
  const links = list(s.links, 'links').map((l) => {
    if (!isObj(l)) throw new SpanProblem('a link is not an object');
    return {
      context: { traceId: idHex(field(l, 'traceId', 'trace_id'), 16, 'link trace_id'), spanId: idHex(field(l, 'spanId', 'span_id'), 8, 'link span_id') },
      attributes: attributes(l.attributes, 'link attributes'),
    };
  });
  const kind = typeof s.kind === 'string' ? 0 : int(s.kind, 'kind');
  return new ReceivedSpan(name, { traceId, spanId, traceFlags }, parent, start, end, status, attributes(s.attributes, 'attributes'), events, resource, kind > 0 ? kind - 1 : 0, links);
}

/** Which span a problem concerns, for the message: its name and IDs as received. */
function describeSpan(s: unknown): string {
  if (!isObj(s)) return 'a span';
  const id = (v: unknown): string => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'string' ? v : '?');
  return `span ${quote(typeof s.name === 'string' ? s.name : '?', 80)} (trace_id ${quote(id(field(s, 'traceId', 'trace_id')), 40)}, span_id ${quote(id(field(s, 'spanId', 'span_id')), 20)})`;
}

/** The whole request → spans; a RequestError (400) when its structure is not OTLP's. */
export function convertRequest(req: unknown): Converted {
  if (!isObj(req)) throw new RequestError(400, 'the body is not an ExportTraceServiceRequest object');
  const out: Converted = { spans: [], rejected: 0 };
  let rss: unknown[];
  try {
    rss = list(field(req, 'resourceSpans', 'resource_spans'), 'resource_spans');
  } catch (err) {
    throw new RequestError(400, (err as Error).message);
  }
  for (const rs of rss) {
    let resource: { attributes: Attributes };
    let scopes: unknown[];
    try {
      if (!isObj(rs)) throw new SpanProblem('a resource_spans entry is not an object');
      const r = rs.resource;
      if (r !== undefined && r !== null && !isObj(r)) throw new SpanProblem('resource is not an object');
      resource = { attributes: attributes(isObj(r) ? r.attributes : undefined, 'resource attributes') };
      scopes = list(field(rs, 'scopeSpans', 'scope_spans'), 'scope_spans');
    } catch (err) {
      throw new RequestError(400, `malformed resource_spans: ${(err as Error).message}`);
    }
    for (const ss of scopes) {
      if (!isObj(ss)) throw new RequestError(400, 'a scope_spans entry is not an object');
      let spans: unknown[];
      try {
        spans = list(ss.spans, 'spans');
      } catch (err) {
        throw new RequestError(400, (err as Error).message);
      }
      for (const s of spans) {
        try {
          out.spans.push(convertSpan(s, resource));
        } catch (err) {
          if (!(err instanceof SpanProblem)) throw err;
          out.rejected++;
          out.firstProblem ??= `${describeSpan(s)}: ${err.message}`;
        }
      }
    }
  }
  return out;
}
