// SDK 3.x on Node 24 with @opentelemetry/api 1.10: examples/sdk3.mjs (the README's SDK 3.x
// usage) as it is in the repo, and the same program as CommonJS.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkQuickStart } from '../checks.js';
import { REPO, type Scenario } from '../harness.js';
import { cjs as sdk2Cjs } from './exporter-sdk2.js';

const example = readFileSync(`${REPO}examples/sdk3.mjs`, 'utf8');

// The SDK 2 CommonJS program with SDK 3's names: TracerProvider and BatchSpanProcessor({ exporter }).
const cjs = sdk2Cjs
  .replace("require('@opentelemetry/sdk-trace-base')", "require('@opentelemetry/sdk-trace')")
  .replaceAll('BasicTracerProvider', 'TracerProvider')
  .replace(/new BatchSpanProcessor\((new DatadogCIPipelineExporter\(.*?\))\)/, 'new BatchSpanProcessor({ exporter: $1 })');

const scenarios: Scenario[] = [
  {
    name: 'exporter: examples/sdk3.mjs (SDK 3.x, ES module)',
    legs: ['node24-sdk3', 'node24-sdk3-latest'],
    files: () => ({ 'sdk3.mjs': example }),
    argv: () => ['sdk3.mjs'],
    check: (run) => checkQuickStart(run),
  },
  {
    name: 'exporter: SDK 3.x quick start as CommonJS',
    legs: ['node24-sdk3', 'node24-sdk3-latest'],
    files: () => {
      if (!cjs.includes('BatchSpanProcessor({ exporter:') || cjs.includes('sdk-trace-base')) throw new Error('the SDK 3 CommonJS program was not derived');
      return { 'sdk3.cjs': cjs };
    },
    argv: () => ['sdk3.cjs'],
    check: (run) => checkQuickStart(run),
  },
  {
    // A fork's pull request has no DD_API_KEY: the example must not fail the build it observes.
    name: 'exporter: examples/sdk3.mjs without DD_API_KEY exits 0 with one clear line',
    legs: ['node24-sdk3', 'node24-sdk3-latest'],
    files: () => ({ 'sdk3.mjs': example }),
    argv: () => ['sdk3.mjs'],
    env: () => ({ DD_CI_PIPELINE_ENDPOINT: '' }),
    check(run) {
      assert.equal(run.exitCode, 0, 'the example failed');
      assert.equal(run.events.length, 0);
      const lines = run.stderr.trim().split('\n');
      assert.match(lines[0] ?? '', /\[datadog-ci-pipeline-exporter\].*DD_API_KEY/);
      assert.ok(lines.length <= 3, `expected a short message, got:\n${run.stderr}`);
    },
  },
];
export default scenarios;
