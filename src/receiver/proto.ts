// The OTLP trace and google.rpc.Status message types, loaded once from the generated descriptor
// (src/receiver/otlp-descriptor.ts, made from the vendored official .proto files) with
// protobufjs/light: no .proto parsing at run time, nothing to find on disk from dist/.
import protobuf from 'protobufjs/light.js';
import { OTLP_DESCRIPTOR } from './otlp-descriptor.js';

export type ProtoType = protobuf.Type;

interface Types {
  request: protobuf.Type;
  response: protobuf.Type;
  status: protobuf.Type;
}

let types: Types | undefined;

/** The message types, resolved on first use (loading the receiver does not pay for it). */
export function otlpTypes(): Types {
  if (types) return types;
  const root = protobuf.Root.fromJSON(OTLP_DESCRIPTOR as protobuf.INamespace);
  root.resolveAll();
  fastOneofs(root.lookupType('opentelemetry.proto.common.v1.AnyValue'));
  types = {
    request: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    status: root.lookupType('google.rpc.Status'),
  };
  return types;
}

/**
 * protobufjs keeps a oneof's virtual property (AnyValue's `value`: which member is set) with a
 * setter on the prototype that `delete`s every other member at each assignment. That turned
 * every attribute value into a dictionary-mode object, and was a third of serve's decoding time.
 * Here each message gets `value` as its own data property when it is made (a class field is
 * defined, not assigned, so the prototype's setter is bypassed), and the decoder's assignment
 * writes it plainly. Presence, encoding and the members are the library's. What differs is only
 * a malformed AnyValue that carries two members on the wire: both stay set, and convert.ts takes
 * the first in its order rather than the last on the wire.
 */
function fastOneofs(type: protobuf.Type): void {
  const names = type.oneofsArray.map((o) => o.name);
  if (names.length !== 1 || names[0] !== 'value') throw new Error(`unexpected oneofs of ${type.name}: ${names.join(', ')}`);
  const Base = type.ctor as unknown as new (p?: object) => object;
  class WithOwnOneof extends Base {
    value: string | undefined = undefined;
  }
  type.ctor = WithOwnOneof as unknown as protobuf.Constructor<object>;
}

export { protobuf };
