// The published shape: ESM and CJS builds with type declarations behind the exports map, and a
// version constant that matches package.json. `npm test` builds before it runs the tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { VERSION } from '../src/version.js';

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
  version: string;
  exports: Record<string, { import: { types: string; default: string }; require: { types: string; default: string } }>;
};

test('VERSION matches package.json', () => {
  assert.equal(VERSION, pkg.version);
});

test('every file the exports map names exists', () => {
  const main = pkg.exports['.']!;
  for (const f of [main.import.types, main.import.default, main.require.types, main.require.default]) {
    assert.ok(existsSync(new URL(f, root)), `${f} is missing: run npm run build`);
  }
});

test('ESM and CJS builds both export the exporter', async () => {
  const esm = (await import(new URL('dist/index.js', root).href)) as Record<string, unknown>;
  const cjs = createRequire(import.meta.url)(new URL('dist/index.cjs', root).pathname) as Record<string, unknown>;
  for (const mod of [esm, cjs]) {
    assert.equal(typeof mod.DatadogCIPipelineExporter, 'function');
    assert.equal(mod.VERSION, pkg.version);
  }
  // Constructing with a bad option must not throw, in either build.
  const Exporter = cjs.DatadogCIPipelineExporter as new (o: object) => { getCounters(): unknown };
  const lines: string[] = [];
  const e = new Exporter({ site: 'nowhere', logger: (l: string) => lines.push(l) });
  assert.ok(e.getCounters());
  assert.equal(lines.length, 1);
});
