// OTLP/protobuf → ExportTraceServiceRequest message, with protobufjs and the official message
// types. Before protobufjs builds anything, one pass over the wire format (guided by the same
// types) checks what a decoder would trust: lengths within their message, wire types that match
// the field, no groups, nesting and the number of messages within the limits. String fields are
// checked for UTF-8 as protobufjs decodes them (ScannedReader, natively).
// protobufjs makes an object per repeated element, so this pass is what bounds its memory.
import { isUtf8 } from 'node:buffer';
import { otlpTypes, protobuf, type ProtoType } from './proto.js';
import { MAX_DEPTH, RequestError } from './limits.js';

const WIRE_OF: Record<string, number> = {
  double: 1, fixed64: 1, sfixed64: 1,
  float: 5, fixed32: 5, sfixed32: 5,
  string: 2, bytes: 2,
  int32: 0, int64: 0, uint32: 0, uint64: 0, sint32: 0, sint64: 0, bool: 0,
};

interface Budget {
  left: number;
}

/** What protobufjs' verified string read says of invalid UTF-8 (it is the WHATWG TextDecoder's). */
let utf8Message: string | undefined;
function notUtf8(): RequestError {
  if (utf8Message === undefined) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.of(0xff));
      utf8Message = 'invalid UTF-8';
    } catch (err) {
      utf8Message = err instanceof Error ? err.message : 'invalid UTF-8';
    }
  }
  return malformed(utf8Message);
}

export function malformed(what: string): RequestError {
  return new RequestError(400, `malformed OTLP/protobuf body: ${what}`);
}

/** Expected wire type of a field (2 for messages and packed repeated scalars), or -1 for "any". */
function wireTypeOf(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Type) return 2;
  const w = field.resolvedType instanceof protobuf.Enum ? 0 : WIRE_OF[field.type];
  if (w === undefined) return -1;
  return field.repeated && w !== 2 ? -1 : w;
}

/** Per message type, by field number: the wire type to expect and the message type to enter. */
interface FieldRule {
  wire: number;
  name: string;
  sub: ProtoType | undefined;
  /** The rules of `sub`, found once (a WeakMap lookup per message was a visible cost). */
  subRules?: Array<FieldRule | undefined>;
}
const rulesCache = new WeakMap<ProtoType, Array<FieldRule | undefined>>();

function rulesOf(type: ProtoType): Array<FieldRule | undefined> {
  let rules = rulesCache.get(type);
  if (rules) return rules;
  rules = [];
  for (const f of type.fieldsArray) {
    rules[f.id] = { wire: wireTypeOf(f), name: f.name, sub: f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined };
  }
  rulesCache.set(type, rules);
  return rules;
}

function scan(r: protobuf.Reader, end: number, type: ProtoType, depth: number, budget: Budget, maxElements: number, rules = rulesOf(type)): void {
  while (r.pos < end) {
    // tag() and size(), as protobufjs' generated decode reads them (stricter than uint32() on a
    // 5-byte varint): what passes here, the decoders read.
    const tag = r.tag();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) throw malformed(`field number 0 at byte ${r.pos}`);
    if (wt === 3 || wt === 4 || wt === 6 || wt === 7) throw malformed(`wire type ${wt} of field ${no} at byte ${r.pos}`);
    const rule = no < rules.length ? rules[no] : undefined;
    if (rule && rule.wire !== -1 && rule.wire !== wt) throw malformed(`field ${type.name}.${rule.name} has wire type ${wt}, expected ${rule.wire}`);
    if (wt === 2) {
      const len = r.size();
      const subEnd = r.pos + len;
      if (subEnd > end) throw malformed(`length ${len} of field ${no} runs past its message`);
      if (rule?.sub) {
        if (--budget.left < 0) throw new RequestError(413, `the request holds more than ${maxElements} messages`);
        if (depth >= MAX_DEPTH) throw malformed(`messages nested deeper than ${MAX_DEPTH}`);
        scan(r, subEnd, rule.sub, depth + 1, budget, maxElements, (rule.subRules ??= rulesOf(rule.sub)));
      }
      r.pos = subEnd;
    } else {
      r.skipType(wt);
    }
  }
  if (r.pos !== end) throw malformed('a field runs past its message');
}

/** The checking pass alone: a RequestError (400/413) for a body a decoder must not trust. */
export function scanProto(body: Uint8Array, maxElements: number): void {
  try {
    const budget: Budget = { left: maxElements };
    scan(protobuf.Reader.create(body), body.length, otlpTypes().request, 0, budget, maxElements);
  } catch (err) {
    if (err instanceof RequestError) throw err;
    throw malformed(err instanceof Error ? err.message : 'cannot be read');
  }
}

export interface DecodedRequest {
  resourceSpans?: unknown;
}

/** A Node buffer, with the method Buffer#toString('utf8') ends in (protobufjs' own string read calls it too). */
type Utf8Buffer = Buffer & { utf8Slice?: (start: number, end: number) => string };

/**
 * protobufjs' reader for Node buffers, with proto3's string check done natively: protobufjs'
 * own `stringVerify` decodes in JavaScript to reject invalid UTF-8. Node's decoding puts U+FFFD
 * where the bytes are not UTF-8, so only a string holding one has its bytes checked. The whole
 * structure has passed scanProto by then, so a structural problem is still the one named first.
 * Short strings come from a cache (shortString, below) when the same bytes were decoded before.
 */
class ScannedReader extends protobuf.BufferReader {
  override stringVerify(): string {
    const len = this.size();
    const start = this.pos;
    const end = start + len;
    if (end > this.len) throw new RangeError(`index out of range: ${start} + ${len} > ${this.len}`);
    this.pos = end;
    const buf = this.buf as Utf8Buffer;
    if (len <= SHORT && len > 0) return shortString(buf, start, end);
    return utf8(buf, start, end);
  }
}

/** Decodes bytes already bounds-checked, with proto3's UTF-8 check. */
function utf8(buf: Utf8Buffer, start: number, end: number): string {
  // utf8Slice, without toString's argument handling, with the same fallback as protobufjs'.
  const s = buf.utf8Slice ? buf.utf8Slice(start, end) : buf.toString('utf8', start, end);
  if (s.includes('\uFFFD') && !isUtf8(buf.subarray(start, end))) throw notUtf8();
  return s;
}

/**
 * Short strings recur from span to span (attribute keys, levels, statuses, names): a small
 * direct-mapped cache, keyed by a hash of the bytes and checked byte for byte, returns the string
 * decoded the first time. Fewer strings to allocate and collect, and a recurring key is the same
 * (already internalized) string each time it becomes a property name.
 */
const SHORT = 32;
const SLOTS = 2048;
const cachedLen = new Uint8Array(SLOTS);
const cachedBytes = new Uint8Array(SLOTS * SHORT);
const cachedString: string[] = new Array<string>(SLOTS).fill('');

function shortString(buf: Utf8Buffer, start: number, end: number): string {
  const len = end - start;
  let h = len;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h ^ (h >>> 15)) & (SLOTS - 1);
  const at = slot * SHORT;
  if (cachedLen[slot] === len) {
    let i = 0;
    while (i < len && cachedBytes[at + i] === buf[start + i]) i++;
    if (i === len) return cachedString[slot]!;
  }
  const s = utf8(buf, start, end);
  cachedLen[slot] = len;
  cachedBytes.set(buf.subarray(start, end), at);
  cachedString[slot] = s;
  return s;
}

/** Body bytes → the request message (plain protobufjs objects), or a RequestError (400/413). */
export function decodeProto(body: Uint8Array, maxElements: number): DecodedRequest {
  const { request } = otlpTypes();
  scanProto(body, maxElements);
  try {
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.length);
    return request.decode(new ScannedReader(buf)) as DecodedRequest;
  } catch (err) {
    if (err instanceof RequestError) throw err;
    throw malformed(err instanceof Error ? err.message : 'cannot be read');
  }
}
