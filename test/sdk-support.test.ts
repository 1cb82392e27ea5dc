// Fast guards for "fits SDK 2.x and 3.x" (the full check is `npm run test:consumers`): nothing in
// src/ or in the published declarations imports an OpenTelemetry package other than the API, and
// no SDK package is a runtime dependency, so installing this package never adds a second SDK.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

function otelImports(text: string): string[] {
  return [...text.matchAll(/(?:from|import\(|require\()\s*['"](@opentelemetry\/[^'"]+)['"]/g)].map((m) => m[1]!);
}

function filesUnder(dir: string, ext: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => ext.test(f))
    .map((f) => join(dir, f));
}

test('src/ imports no OpenTelemetry package but the API', () => {
  const files = filesUnder(join(root, 'src'), /\.ts$/);
  assert.ok(files.length > 10);
  for (const f of files) {
    const other = otelImports(readFileSync(f, 'utf8')).filter((p) => p !== '@opentelemetry/api');
    assert.deepEqual(other, [], `${f} imports ${other.join(', ')}`);
  }
});

test('the built declarations and bundles import no OpenTelemetry package but the API', () => {
  const files = filesUnder(join(root, 'dist'), /\.(d\.c?ts|c?js)$/);
  assert.ok(files.some((f) => f.endsWith('index.d.ts')) && files.some((f) => f.endsWith('index.d.cts')), 'run npm run build');
  for (const f of files) {
    const other = otelImports(readFileSync(f, 'utf8')).filter((p) => p !== '@opentelemetry/api');
    assert.deepEqual(other, [], `${f} imports ${other.join(', ')}`);
  }
});

test('no OpenTelemetry runtime dependency; the API is a peer', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@opentelemetry/')), []);
  assert.ok(pkg.peerDependencies?.['@opentelemetry/api'], 'the API is not a peer dependency');
});
