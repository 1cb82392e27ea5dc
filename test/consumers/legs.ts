// The two consumer legs and the tests every leg runs: plain `npm install` of the tarball beside the
// leg's SDK, one copy of the API and of the SDK, declarations that name no SDK package, tsc on a
// TypeScript consumer, then every scenario of test/consumers/scenarios for the leg.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  PACKAGE_NAME,
  createConsumer,
  describeExec,
  installNode24,
  installedPackages,
  packRepo,
  runScenario,
  scenariosFor,
  scratch,
  typecheck,
  versionAt,
  type Leg,
  type LegName,
} from './harness.js';
import { typescriptConsumer } from './typescript-consumer.js';

interface LegSpec {
  sdkPackage: Leg['sdkPackage'];
  /** The consumer's dependencies besides this package. */
  dependencies: Record<string, string>;
  /** The API versions the SDK line accepts: a label, and the installed version must match. */
  api: [label: string, version: RegExp];
  /** Packages that must be installed exactly once. */
  single: string[];
  /** Packages that must not be installed at all. */
  absent: string[];
  node(scratchDir: string): Promise<string>;
  /** Install with current registry metadata (the leg follows new releases). */
  fresh?: boolean;
}

// The SDK package is pinned to the version the leg's sdk-node pins (sdk-node depends on exact
// versions): with a newer patch at the top level, npm would nest a second copy under sdk-node.
export const LEGS: Record<LegName, LegSpec> = {
  'node20-sdk2': {
    sdkPackage: '@opentelemetry/sdk-trace-base',
    dependencies: {
      '@opentelemetry/api': '~1.9.0',
      '@opentelemetry/sdk-trace-base': '2.12.0',
      '@opentelemetry/sdk-node': '0.223.0',
    },
    api: ['1.9', /^1\.9\./],
    single: ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-trace', '@opentelemetry/core'],
    absent: [],
    node: () => Promise.resolve(process.execPath),
  },
  'node24-sdk3': {
    sdkPackage: '@opentelemetry/sdk-trace',
    dependencies: {
      '@opentelemetry/api': '~1.10.0',
      '@opentelemetry/sdk-trace': '3.1.0',
      '@opentelemetry/sdk-node': '0.301.0',
    },
    api: ['1.10', /^1\.10\./],
    single: ['@opentelemetry/api', '@opentelemetry/sdk-trace', '@opentelemetry/core'],
    // This package must not bring the 2.x SDK into a 3.x project.
    absent: ['@opentelemetry/sdk-trace-base'],
    node: (dir) => installNode24(join(dir, 'node24')),
  },
  // The new user: today's API and SDK as `npm install` picks them (ranges, not pins), no
  // sdk-node. The one leg that follows new releases.
  'node24-sdk3-latest': {
    sdkPackage: '@opentelemetry/sdk-trace',
    dependencies: {
      '@opentelemetry/api': '^1.10.0',
      '@opentelemetry/sdk-trace': '^3.1.1',
    },
    api: ['≥ 1.10', /^1\.(1\d|[2-9]\d)\./],
    single: ['@opentelemetry/api', '@opentelemetry/sdk-trace', '@opentelemetry/core'],
    absent: ['@opentelemetry/sdk-trace-base'],
    node: (dir) => installNode24(join(dir, 'node24')),
    fresh: true,
  },
};

export function legSuite(name: LegName): void {
  const spec = LEGS[name];
  describe(`consumer ${name}`, () => {
    let leg: Leg | undefined;
    let cleanup: (() => Promise<void>) | undefined;

    before(async () => {
      const s = await scratch(name);
      cleanup = s.cleanup;
      const [tarball, node] = await Promise.all([packRepo(s.dir), spec.node(s.dir)]);
      const dir = await createConsumer(join(s.dir, 'consumer'), node, tarball, spec.dependencies, spec.fresh);
      leg = { name, node, dir, sdkPackage: spec.sdkPackage, nodeSdk: '@opentelemetry/sdk-node' in spec.dependencies };
    }, { timeout: 600_000 });

    after(async () => {
      await cleanup?.();
    });

    const ready = (): Leg => {
      assert.ok(leg, 'the consumer project was not set up');
      return leg;
    };

    test(`one copy of the API (${spec.api[0]}) and of the SDK; npm ls finds no problem`, async () => {
      const installed = await installedPackages(ready());
      for (const pkg of spec.single) {
        const copies = installed.get(pkg) ?? [];
        assert.equal(copies.length, 1, `${pkg}: ${copies.length} copies: ${copies.join(', ')}`);
      }
      const api = versionAt(installed.get('@opentelemetry/api')![0]!);
      assert.match(api, spec.api[1], `@opentelemetry/api ${api}`);
      for (const pkg of spec.absent) assert.deepEqual(installed.get(pkg) ?? [], [], `${pkg} is installed`);
    });

    test('the published package depends on no SDK package, and its declarations name none', () => {
      const root = join(ready().dir, 'node_modules', PACKAGE_NAME);
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      assert.deepEqual(Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@opentelemetry/')), []);
      const decls = readdirSync(join(root, 'dist')).filter((f) => /\.d\.c?ts$/.test(f));
      assert.ok(decls.length >= 2, `declarations: ${decls.join(', ')}`);
      for (const f of decls) {
        const text = readFileSync(join(root, 'dist', f), 'utf8');
        const named = [...text.matchAll(/(?:from|import\()\s*['"](@opentelemetry\/[^'"]+)['"]/g)].map((m) => m[1]);
        // Only the API, if anything (the intake's declarations need none; the exporter's need it).
        const expected = f.startsWith('index.') ? ['@opentelemetry/api'] : [...new Set(named)].filter((n) => n === '@opentelemetry/api');
        assert.deepEqual([...new Set(named)], expected, `${f} imports ${named.join(', ')}`);
      }
    });

    test('tsc type-checks a TypeScript consumer (ESM and CommonJS) against the published declarations', async () => {
      const l = ready();
      for (const [rel, text] of Object.entries(typescriptConsumer(l))) await writeFile(join(l.dir, rel), text);
      const r = await typecheck(l, join(l.dir, 'tsconfig.json'));
      assert.equal(r.code, 0, describeExec('tsc', r));
    });

    test('scenarios', async (t) => {
      const l = ready();
      const list = await scenariosFor(name);
      assert.ok(list.length > 0, 'no scenario for this leg');
      for (const s of list) {
        await t.test(s.name, { timeout: (s.timeoutMs ?? 60_000) + 10_000 }, () => runScenario(s, l));
      }
    });
  });
}
