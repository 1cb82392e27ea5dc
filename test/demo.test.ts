// The demo (`npm run demo`) is the first thing a new user runs, so it is tested like product code:
// the tree rendering on plain events, and the whole demo end to end against the local intake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatDuration, renderTree, type TreeInput, type TreeResource } from '../examples/tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const P = '0af76519-16cd-43dd-8448-eb211c80319c';
const T0 = Date.parse('2026-01-01T10:00:00.000Z');
const at = (ms: number): string => new Date(T0 + ms).toISOString();

function ev(resource: Partial<TreeResource> & { level: string; name: string }): TreeInput {
  return { attributes: { resource: { status: 'success', ...resource } }, type: 'cipipeline_resource_request' } as TreeInput;
}

/** Plain events as the intake would record them, deliberately out of order (children first). */
const EVENTS: TreeInput[] = [
  ev({ level: 'step', name: 'compile', id: 's1', pipeline_unique_id: P, stage_id: 'st1', job_id: 'j1', start: at(100), end: at(400) }),
  ev({
    level: 'step',
    name: 'test: sum',
    id: 's2',
    pipeline_unique_id: P,
    stage_id: 'st2',
    job_id: 'j2',
    status: 'error',
    start: at(2000),
    end: at(2100),
    error: { type: 'CommandFailed', message: 'sum of [1,2,3] should be 7\n    at line 1' },
  }),
  ev({
    level: 'job',
    name: 'unit tests',
    id: 'j2',
    pipeline_unique_id: P,
    stage_id: 'st2',
    status: 'error',
    start: at(1900),
    end: at(2200),
    error: { message: 'step "test: sum" failed' },
  }),
  ev({ level: 'job', name: 'build', id: 'j1', pipeline_unique_id: P, stage_id: 'st1', start: at(50), end: at(500) }),
  ev({ level: 'job', name: 'lint', id: 'j3', pipeline_unique_id: P, start: at(600), end: at(700) }),
  ev({ level: 'stage', name: 'test', id: 'st2', pipeline_unique_id: P, status: 'error', start: at(1800), end: at(2300) }),
  ev({ level: 'stage', name: 'build', id: 'st1', pipeline_unique_id: P, start: at(10), end: at(510) }),
  ev({ level: 'step', name: 'stage-level step', id: 's3', pipeline_unique_id: P, stage_id: 'st1', start: at(505), end: at(508) }),
  ev({ level: 'pipeline', name: 'demo', unique_id: P, status: 'error', start: at(0), end: at(2_500), error: { message: 'stage "test" failed' } }),
];

test('tree: pipeline → stages → jobs → steps, ordered by start, whatever the arrival order', () => {
  const out = renderTree(EVENTS);
  assert.equal(
    out,
    [
      '✖ pipeline demo  error  2.50 s',
      '│  ↳ stage "test" failed',
      '├─ ✔ stage build  success  500 ms',
      '│  ├─ ✔ job build  success  450 ms',
      '│  │  └─ ✔ step compile  success  300 ms',
      '│  └─ ✔ step stage-level step  success  3 ms',
      '├─ ✔ job lint  success  100 ms',
      '└─ ✖ stage test  error  500 ms',
      '   └─ ✖ job unit tests  error  300 ms',
      '      │  ↳ step "test: sum" failed',
      '      └─ ✖ step test: sum  error  100 ms',
      '            ↳ CommandFailed: sum of [1,2,3] should be 7 ⏎ at line 1',
      '',
    ].join('\n'),
  );
});

test('tree: a job without a stage hangs under its pipeline', () => {
  const out = renderTree(EVENTS).split('\n');
  assert.ok(out.includes('├─ ✔ job lint  success  100 ms'));
});

test('tree: accepts bare resources as well as data items', () => {
  const bare = EVENTS.map((e) => (e as { attributes: { resource: TreeResource } }).attributes.resource);
  assert.equal(renderTree(bare), renderTree(EVENTS));
});

test('tree: items whose parent did not arrive are listed apart, not hidden', () => {
  const out = renderTree([
    ev({ level: 'pipeline', name: 'p', unique_id: P }),
    ev({ level: 'step', name: 'lost step', id: 'x', pipeline_unique_id: P, job_id: 'missing-job' }),
    ev({ level: 'job', name: 'lost job', id: 'y', pipeline_unique_id: 'other-pipeline' }),
  ]);
  assert.match(out, /^✔ pipeline p {2}success\n/);
  assert.match(out, /\(2 event\(s\) whose parent was not received\)/);
  assert.match(out, /✔ step lost step/);
  assert.match(out, /✔ job lost job/);
});

test('tree: two pipelines, same stage ids, do not mix', () => {
  const Q = '11111111-2222-4333-8444-555555555555';
  const out = renderTree([
    ev({ level: 'pipeline', name: 'first', unique_id: P, start: at(0), end: at(10) }),
    ev({ level: 'pipeline', name: 'second', unique_id: Q, start: at(5), end: at(20) }),
    ev({ level: 'stage', name: 'first-stage', id: 'same', pipeline_unique_id: P, start: at(1), end: at(2) }),
    ev({ level: 'stage', name: 'second-stage', id: 'same', pipeline_unique_id: Q, start: at(6), end: at(7) }),
  ]);
  assert.equal(
    out,
    [
      '✔ pipeline first  success  10 ms',
      '└─ ✔ stage first-stage  success  1 ms',
      '✔ pipeline second  success  15 ms',
      '└─ ✔ stage second-stage  success  1 ms',
      '',
    ].join('\n'),
  );
});

test('tree: statuses, missing end, long errors, colours, empty input', () => {
  const out = renderTree(
    [
      ev({ level: 'pipeline', name: 'p', unique_id: P, status: 'running', start: at(0) }),
      ev({ level: 'job', name: 'c', id: 'c', pipeline_unique_id: P, status: 'canceled', start: at(1), end: at(2) }),
      ev({ level: 'job', name: 's', id: 's', pipeline_unique_id: P, status: 'skipped', start: at(3), end: at(3) }),
      ev({ level: 'job', name: 'e', id: 'e', pipeline_unique_id: P, status: 'error', start: at(4), end: at(5), error: { message: 'x'.repeat(500) } }),
    ],
    { maxErrorLength: 20 },
  );
  assert.match(out, /^… pipeline p {2}running\n/);
  assert.match(out, /⊘ job c {2}canceled {2}1 ms/);
  assert.match(out, /↷ job s {2}skipped {2}0 ms/);
  assert.match(out, /↳ x{19}…\n/);
  assert.ok(renderTree(EVENTS, { color: true }).includes('\u001b[31m✖\u001b[0m'));
  assert.equal(renderTree([]), '(no pipeline events)\n');
});

test('formatDuration', () => {
  assert.equal(formatDuration(0), '0 ms');
  assert.equal(formatDuration(999.6), '1000 ms');
  assert.equal(formatDuration(1234), '1.23 s');
  assert.equal(formatDuration(61_000), '1 min 1 s');
  assert.equal(formatDuration(-1), '?');
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runExample(file: string, timeoutMs: number, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extraEnv };
  // Otherwise a developer's own key would make the test send to Datadog.
  delete env.DD_API_KEY;
  delete env.DD_SITE;
  delete env.DD_ENV;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

test('demo end to end: valid events, the tree with the failing step, exit 0', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  const eventsFile = join(dir, 'events.json');
  const r = await runExample('examples/demo.ts', 45_000, { DEMO_EVENTS_FILE: eventsFile });
  const detail = `exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.ok(r.ms < 20_000, `demo took ${r.ms} ms\n${detail}`);
  for (const re of [
    /^✖ pipeline datadog-ci-pipeline-exporter demo build {2}error {2}\d/m,
    /^│ {2}↳ stage "test" › job "unit tests" › step "test: sum" failed$/m,
    /^├─ ✔ stage prepare {2}success {2}\d/m,
    /^│ {2}└─ ✔ job checkout {2}success/m,
    /^│ {5}├─ ✔ step detect git metadata {2}success/m,
    // The stageless job hangs directly under the pipeline.
    /^├─ ✔ job lint {2}success/m,
    /^│ {2}├─ ✔ job compile {2}success|^│ {2}└─ ✔ job compile {2}success/m,
    // Steps under an unlabelled "phase" span still hang under their job.
    /✔ step hash sources {2}success/,
    /^├─ ✖ stage test {2}error/m,
    /^│ {2}└─ ✖ job unit tests {2}error {2}\d/m,
    /^│ {5}│ {2}↳ step "test: sum" failed$/m,
    /^│ {5}└─ ✖ step test: sum {2}error {2}\d/m,
    /↳ CommandFailed: node -e sum-test exited with code 1: AssertionError.*sum of \[1,2,3\] should be 7/,
    /^└─ ✔ stage report {2}success/m,
    /^✔ \d+ event\(s\) in \d+ request\(s\) validated .*: all valid$/m,
  ]) {
    assert.match(r.stdout, re, detail);
  }
  assert.doesNotMatch(r.stdout, /whose parent was not received/, detail);
  assert.doesNotMatch(r.stderr, /did not exit|demo failed|failed validation/, detail);
  // 1 pipeline, 4 stages, 6 jobs, 11 steps; small batches mean several requests.
  const m = /^✔ (\d+) event\(s\) in (\d+) request/m.exec(r.stdout);
  assert.equal(Number(m?.[1]), 22, detail);

  // What was sent, beyond what the tree shows: links, inheritance, error fields.
  const events = (JSON.parse(await readFile(eventsFile, 'utf8')) as Array<{ attributes: Record<string, unknown> & { resource: Res } }>);
  await rm(dir, { recursive: true, force: true });
  const res = events.map((e) => e.attributes.resource);
  const one = (level: string, name: string): Res => {
    const found = res.filter((x) => x.level === level && x.name === name);
    assert.equal(found.length, 1, `${level} ${name}: ${found.length} events`);
    return found[0]!;
  };
  const pipeline = one('pipeline', 'datadog-ci-pipeline-exporter demo build');
  assert.equal(pipeline.status, 'error');
  assert.ok(typeof pipeline.url === 'string' && pipeline.url.startsWith('https://'));
  for (const x of res) {
    if (x !== pipeline) {
      assert.equal(x.pipeline_unique_id, pipeline.unique_id, `${x.level} ${x.name}`);
      assert.equal(x.pipeline_name, pipeline.name, `${x.level} ${x.name}`);
    }
    // git detected on the pipeline span is inherited by every descendant.
    assert.deepEqual(x.git, pipeline.git, `${x.level} ${x.name}`);
  }
  const head = await new Promise<string>((resolve) =>
    execFile('git', ['rev-parse', 'HEAD'], { cwd: ROOT }, (err, out) => resolve(err ? '' : out.trim())),
  );
  if (head) assert.equal((pipeline.git as { sha?: string }).sha, head);
  const compile = one('job', 'compile');
  const build = one('stage', 'build');
  assert.equal(compile.stage_id, build.id);
  // Steps under the unlabelled "phase" span still link to their job.
  assert.equal(one('step', 'hash sources').job_id, compile.id);
  assert.equal(one('step', 'hash sources').stage_id, build.id);
  assert.equal(one('job', 'lint').stage_id ?? null, null);
  assert.equal(one('step', 'scan sources').job_id, one('job', 'lint').id);
  const failing = one('step', 'test: sum');
  assert.equal(failing.status, 'error');
  assert.equal(failing.error?.type, 'CommandFailed');
  assert.match(String(failing.error?.message), /sum of \[1,2,3\] should be 7/);
  assert.equal(one('job', 'unit tests').status, 'error');
  assert.equal(one('stage', 'test').status, 'error');
  assert.equal(one('stage', 'report').status, 'success');
  for (const e of events) {
    assert.equal(e.attributes.env, 'demo');
    assert.equal(e.attributes.service, 'datadog-ci-pipeline-exporter-demo');
  }
});

type Res = TreeResource & { git?: unknown; pipeline_name?: string; url?: string };

test('basic example without DD_API_KEY: one clear line on stderr, exits 0 by itself', { timeout: 30_000 }, async () => {
  // The README's snippet, unchanged: a missing key must not fail the build that runs it, so the
  // process must exit 0 even though `await provider.shutdown()` is not guarded.
  const r = await runExample('examples/basic.ts', 20_000);
  const detail = `exit ${r.code} ${r.signal ?? ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.code, 0, detail);
  assert.match(r.stderr, /DD_API_KEY/, detail);
  assert.ok(r.stderr.trim().split('\n').length <= 3, `expected a short message, got:\n${r.stderr}`);
});
