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
  types = {
    request: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    status: root.lookupType('google.rpc.Status'),
  };
  return types;
}

export { protobuf };
