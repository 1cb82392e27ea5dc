// OTLP/JSON → the request object. JSON.parse builds one object per `{` and `[`; a quick pass
// over the bytes first counts them (outside strings) and their nesting, so a body of a million
// empty objects is refused before it is built. What the values mean (hex IDs, enums as
// integers, 64-bit integers as strings or numbers) is read by convert.ts.
import { MAX_DEPTH, RequestError } from './limits.js';
import type { DecodedRequest } from './decode-proto.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const OPEN_ARR = 0x5b;
const CLOSE_OBJ = 0x7d;
const CLOSE_ARR = 0x5d;

/** Counts containers and nesting; throws a RequestError past the limits. */
export function checkJsonShape(body: Uint8Array, maxElements: number): void {
  let inString = false;
  let depth = 0;
  let containers = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_OBJ || c === OPEN_ARR) {
      if (++containers > maxElements) throw new RequestError(413, `the request holds more than ${maxElements} JSON objects and arrays`);
      // AnyValue nests two containers per level ({"arrayValue":{"values":[...]}}).
      if (++depth > MAX_DEPTH * 3) throw new RequestError(400, `malformed OTLP/JSON body: nested deeper than ${MAX_DEPTH * 3}`);
    } else if (c === CLOSE_OBJ || c === CLOSE_ARR) depth--;
  }
}

export function decodeJson(body: Buffer, maxElements: number): DecodedRequest {
  checkJsonShape(body, maxElements);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    // JSON.parse's message quotes the body: never echoed (bodies are neither logged nor returned).
    throw new RequestError(400, 'malformed OTLP/JSON body: not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RequestError(400, 'malformed OTLP/JSON body: not an ExportTraceServiceRequest object');
  }
  return value as DecodedRequest;
}
