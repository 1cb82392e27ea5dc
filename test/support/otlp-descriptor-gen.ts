// Builds src/receiver/otlp-descriptor.ts from the vendored .proto files (protobufjs' full build
// parses them; the receiver loads the result with protobufjs/light, so dist/ needs no .proto
// files and no parser). test/serve-units.test.ts checks the committed file is up to date;
// `UPDATE_OTLP_DESCRIPTOR=1` rewrites it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';

const INCLUDE = ['vendor/opentelemetry-proto', 'vendor/googleapis'];

export function generateDescriptorSource(repo: string): string {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    // google/protobuf/*.proto (Any, for google.rpc.Status.details) ship with protobufjs.
    if (target.startsWith('google/protobuf/')) return target;
    for (const dir of INCLUDE) {
      const p = join(repo, dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'google/rpc/status.proto']);
  return [
    '// GENERATED from vendor/opentelemetry-proto and vendor/googleapis (google/rpc/status.proto) by',
    '// test/support/otlp-descriptor-gen.ts: do not edit. Regenerate with',
    '// `UPDATE_OTLP_DESCRIPTOR=1 node --import tsx --test test/serve-units.test.ts`.',
    `export const OTLP_DESCRIPTOR = ${JSON.stringify(root.toJSON(), null, 1)};`,
    '',
  ].join('\n');
}
