// The README's quick start through DatadogCIPipelineSpanProcessor (the recommended setup) on each
// SDK line, and the `run` command of the installed bin: running events first, then the finished
// ones with the same IDs, and the command's exit code kept.
import assert from 'node:assert/strict';
import { checkQuickStart } from '../checks.js';
import { installedBin, type Scenario, type ScenarioRun } from '../harness.js';
import { esm as sdk2Esm } from './exporter-sdk2.js';

/** The SDK 2 quick start with the processor in place of BatchSpanProcessor(exporter). */
const processorSdk2 = sdk2Esm
  .replace('import { BasicTracerProvider, BatchSpanProcessor }', 'import { BasicTracerProvider }')
  .replace('import { DatadogCIPipelineExporter }', 'import { DatadogCIPipelineExporter, DatadogCIPipelineSpanProcessor }')
  .replace(/new BatchSpanProcessor\((new DatadogCIPipelineExporter\(.*?\))\)/, 'new DatadogCIPipelineSpanProcessor($1)');

/** The same on SDK 3.x: TracerProvider from @opentelemetry/sdk-trace. */
const processorSdk3 = processorSdk2
  .replace("from '@opentelemetry/sdk-trace-base'", "from '@opentelemetry/sdk-trace'")
  .replaceAll('BasicTracerProvider', 'TracerProvider');

/** Running events (pipeline, job) came first and match their finished events; the rest is the quick start. */
function checkLive(run: ScenarioRun): void {
  const running = run.events.filter((e) => e.attributes.resource.status === 'running');
  assert.deepEqual(running.map((e) => e.attributes.resource.level).sort(), ['job', 'pipeline'], 'a running event for the pipeline and the job');
  const finished = run.events.filter((e) => e.attributes.resource.status !== 'running');
  for (const r of running) {
    const res = r.attributes.resource as Record<string, unknown>;
    const id = res.level === 'pipeline' ? 'unique_id' : 'id';
    const done = finished.find((e) => (e.attributes.resource as Record<string, unknown>)[id] === res[id]);
    assert.ok(done, `the finished ${String(res.level)} has the running event's ${id}`);
    const d = done.attributes.resource as Record<string, unknown>;
    assert.deepEqual([d.name, d.url, d.start], [res.name, res.url, res.start]);
    assert.ok(run.events.indexOf(r) < run.events.indexOf(done), 'running before finished');
  }
  checkQuickStart({ ...run, events: finished });
}

const scenarios: Scenario[] = [
  {
    name: 'processor: SDK 2.x quick start through DatadogCIPipelineSpanProcessor',
    legs: ['node20-sdk2'],
    files: () => ({ 'live.mjs': processorSdk2 }),
    argv: () => ['live.mjs'],
    check: checkLive,
  },
  {
    name: 'processor: SDK 3.x quick start through DatadogCIPipelineSpanProcessor',
    legs: ['node24-sdk3', 'node24-sdk3-latest'],
    files: () => {
      if (!processorSdk3.includes('new DatadogCIPipelineSpanProcessor(') || processorSdk3.includes('sdk-trace-base')) throw new Error('the processor program was not derived');
      return { 'live.mjs': processorSdk3 };
    },
    argv: () => ['live.mjs'],
    check: checkLive,
  },
  {
    name: 'run command: a failing command is a pipeline in error, its exit code kept',
    legs: ['node20-sdk2', 'node24-sdk3'],
    // The command runs a moment: `run` sends the running event only when the command still runs
    // once the exporter can send (a command that ends at once gets its finished event alone).
    argv: (leg) => [installedBin(leg), 'run', '--name', 'release', '--url', 'https://ci.example.com/builds/1', '--no-detect', '--', 'sh', '-c', 'sleep 1; exit 3'],
    check(run) {
      assert.equal(run.exitCode, 3, `run's exit code is the command's; stderr: ${run.stderr}`);
      const pipelines = run.events.filter((e) => e.attributes.resource.level === 'pipeline');
      assert.deepEqual(pipelines.map((e) => e.attributes.resource.status), ['running', 'error']);
      const done = pipelines[1]!.attributes.resource as Record<string, unknown>;
      assert.equal(done.name, 'release');
      assert.match(JSON.stringify(done.error), /exit code 3/);
    },
  },
];
export default scenarios;
