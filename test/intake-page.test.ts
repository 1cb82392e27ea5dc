// The intake's pipeline page in a real headless browser (Debian's chromium, driven by
// playwright-core): pipelines sent through the real exporter appear newest first, as a waterfall
// whose rows follow the hierarchy, coloured by status; a failed step shows its error when clicked;
// a running job's bar grows, then turns finished when the finished event arrives; an event the
// intake rejected shows its problem. The test also takes the README's screenshot
// (UPDATE_SCREENSHOT=1 writes docs/pipeline-page.png; otherwise it goes to a temp dir).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpanStatusCode } from '@opentelemetry/api';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { runTree, startHarness, type SpanSpec } from './support/trace-helpers.js';

// The project compiles for Node (no DOM lib): the few browser names the page callbacks use.
interface DomElement {
  dataset: Record<string, string | undefined>;
  title: string;
  querySelector(selector: string): DomElement | null;
}
declare const document: { querySelector(selector: string): DomElement | null };
declare function getComputedStyle(e: unknown): { backgroundColor: string };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = fileURLToPath(new URL('../docs/pipeline-page.png', import.meta.url));

/** The browser with a fresh profile (user-data-dir) of its own, removed with the temp dir. */
async function launch(userDataDir: string): Promise<BrowserContext> {
  // Never skip: without a browser the page is untested, and that must show as a failure.
  assert.ok(
    existsSync(CHROMIUM),
    `chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`,
  );
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const RGB = {
  success: 'rgb(45, 164, 78)',
  error: 'rgb(207, 34, 46)',
  running: 'rgb(9, 105, 218)',
  canceled: 'rgb(140, 149, 159)',
};

/** A small build whose spans have fixed offsets from `t0` (ms), so the waterfall is readable. */
function build(t0: number, name: string, id: string, withFailure: boolean): SpanSpec {
  const at = (ms: number): Date => new Date(t0 + ms);
  const span = (level: string, n: string, from: number, to: number, children: SpanSpec[] = [], extra: Partial<SpanSpec> = {}): SpanSpec => ({
    name: n,
    attributes: { 'ci.level': level, ...(level === 'pipeline' ? { 'ci.url': `https://ci.example.com/${id}`, 'ci.pipeline_id': id } : {}), ...(level === 'job' ? { 'ci.url': `https://ci.example.com/${id}/${n}` } : {}) },
    startTime: at(from),
    endTime: at(to),
    children,
    ...extra,
  });
  const failed: Partial<SpanSpec> = {
    status: { code: SpanStatusCode.ERROR, message: 'npm test exited with code 1' },
    exceptions: [{ name: 'AssertionError', message: 'expected 7, got 6\n    at sum.test.js:3:10' }],
  };
  const parentFailed: Partial<SpanSpec> = { status: { code: SpanStatusCode.ERROR, message: 'step "unit tests" failed' } };
  return span(
    'pipeline',
    name,
    0,
    withFailure ? 9_000 : 4_000,
    [
      span('stage', `build`, 100, 3_900, [
        span('job', 'compile', 200, 2_400, [span('step', 'checkout', 250, 700), span('step', 'npm ci', 720, 1_900), span('step', 'tsc', 1_920, 2_350)]),
        span('job', 'lint', 300, 3_800, [span('step', 'eslint', 400, 3_700)]),
      ]),
      ...(withFailure
        ? [
            span('stage', 'test', 4_000, 8_900, [span('job', 'unit', 4_100, 8_800, [span('step', 'unit tests', 4_200, 8_700, [], failed)], parentFailed)], parentFailed),
          ]
        : []),
    ],
    withFailure ? { status: { code: SpanStatusCode.ERROR, message: 'stage "test" failed' } } : {},
  );
}

async function rows(page: Page, pipelineName: string): Promise<Array<{ level: string; name: string; status: string; color: string }>> {
  return page.$$eval(
    `section.pipeline[data-name="${pipelineName}"] .row`,
    (els) =>
      els.map((e) => {
        const el = e as unknown as DomElement;
        const bar = el.querySelector('.bar');
        return { level: el.dataset.level ?? '', name: el.dataset.name ?? '', status: el.dataset.status ?? '', color: getComputedStyle(bar).backgroundColor };
      }),
  );
}

async function post(endpoint: string, resource: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'dd-api-key': 'unused' },
    body: JSON.stringify({ data: { type: 'cipipeline_resource_request', attributes: { resource } } }),
  });
  return { status: res.status, body: await res.json() };
}

test('pipeline page: rows, order and colours; a failed step’s error; a running job turns finished; a rejected event’s problem', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'intake-page-'));
  const profile = join(dir, 'profile');
  const opened: { browser?: BrowserContext } = {};
  t.after(async () => {
    // A browser that does not close (a machine loaded enough to time the test out) must not keep
    // this test file's process, and with it the whole suite, waiting: give it 10 s, then kill it.
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      opened.browser?.close().then(() => true, () => false) ?? true,
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
    ]);
    clearTimeout(timer);
    if (!closed) spawnSync('pkill', ['-KILL', '-f', profile]);
    rmSync(dir, { recursive: true, force: true });
  });
  const browser = (opened.browser = await launch(profile));
  const h = await startHarness(t, { exporter: { env: 'ci', service: 'shop-web' } });

  const now = Date.now();
  runTree(h.tracer, build(now - 600_000, 'nightly #41', '41', false));
  runTree(h.tracer, build(now - 12_000, 'build #42', '42', true));
  await h.flush();
  await h.intake.waitForEvents(17);
  assert.equal(h.intake.invalid.length, 0, JSON.stringify(h.intake.invalid.map((r) => r.errors)));

  const page = await browser.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(h.intake.url + '/');
  await page.waitForSelector('section.pipeline[data-name="build #42"] .row[data-name="unit tests"]', { timeout: 15_000 });

  // Newest first.
  const sections = await page.$$eval('section.pipeline', (els) => els.map((e) => (e as unknown as DomElement).dataset.name));
  assert.deepEqual(sections, ['build #42', 'nightly #41']);

  // The hierarchy, children by start time, and the colours of the statuses.
  const got = await rows(page, 'build #42');
  assert.deepEqual(
    got.map((r) => `${r.level} ${r.name} ${r.status}`),
    [
      'pipeline build #42 error',
      'stage build success',
      'job compile success',
      'step checkout success',
      'step npm ci success',
      'step tsc success',
      'job lint success',
      'step eslint success',
      'stage test error',
      'job unit error',
      'step unit tests error',
    ],
  );
  for (const r of got) assert.equal(r.color, RGB[r.status as keyof typeof RGB], `${r.level} ${r.name}`);
  // Bars sit on one time axis: the failing step starts after the build stage ended.
  const box = async (name: string): Promise<{ x: number; width: number }> => {
    const b = await page.locator(`section.pipeline[data-name="build #42"] .row[data-name="${name}"] .bar`).boundingBox();
    assert.ok(b, `no bar for ${name}`);
    return b;
  };
  const stageBuild = await box('build');
  const failing = await box('unit tests');
  assert.ok(failing.x > stageBuild.x + stageBuild.width, `unit tests at ${failing.x}, build ends at ${stageBuild.x + stageBuild.width}`);

  // Click the failed step: its error type and message.
  await page.click('section.pipeline[data-name="build #42"] .row[data-name="unit tests"]');
  const details = page.locator('section.pipeline[data-name="build #42"] .details');
  await details.waitFor({ state: 'visible' });
  assert.equal(await details.locator('.errtype').textContent(), 'AssertionError');
  assert.match((await details.locator('.errmsg').textContent()) ?? '', /expected 7, got 6\n\s+at sum\.test\.js:3:10/);

  // A running job (no end yet) in the same pipeline: a growing bar, then the finished event.
  const pipelineEvent = h.intake.events.find((e) => e.attributes.resource.name === 'build #42')!.attributes.resource;
  const running = {
    level: 'job',
    id: '7d1f3c2a-0000-4000-8000-00000000d3b1',
    name: 'deploy preview',
    pipeline_unique_id: pipelineEvent.unique_id,
    pipeline_name: 'build #42',
    url: 'https://ci.example.com/42/deploy',
    start: new Date(Date.now() - 2_500).toISOString(),
    status: 'running',
  };
  assert.equal((await post(h.intake.endpoint, running)).status, 202);
  const runningRow = 'section.pipeline[data-name="build #42"] .row[data-name="deploy preview"]';
  await page.waitForSelector(`${runningRow}[data-status="running"]`, { timeout: 10_000 });
  assert.equal(await page.$eval(`${runningRow} .bar`, (b) => getComputedStyle(b).backgroundColor), RGB.running);
  const w0 = (await page.locator(`${runningRow} .bar`).boundingBox())!.width;
  await page.waitForTimeout(1_200);
  const w1 = (await page.locator(`${runningRow} .bar`).boundingBox())!.width;
  assert.ok(w1 > w0, `the running bar did not grow: ${w0} → ${w1}`);

  // An event the intake rejects (a metric that is not numeric): shown with its problem.
  const rejected = await post(h.intake.endpoint, {
    level: 'step',
    id: '7d1f3c2a-0000-4000-8000-00000000beef',
    name: 'upload coverage',
    pipeline_unique_id: pipelineEvent.unique_id,
    pipeline_name: 'build #42',
    job_id: running.id,
    job_name: running.name,
    start: new Date(Date.now() - 2_000).toISOString(),
    end: new Date(Date.now() - 500).toISOString(),
    status: 'success',
    metrics: ['coverage:high'],
  });
  assert.equal(rejected.status, 400);
  const badRow = 'section.pipeline[data-name="build #42"] .row[data-name="upload coverage"]';
  await page.waitForSelector(`${badRow} .flag`, { timeout: 10_000 });
  assert.match((await page.$eval(`${badRow} .flag`, (f) => (f as unknown as DomElement).title)) ?? '', /metrics\[0\]: value is not numeric/);
  // The selection survives the page's refresh.
  await details.waitFor({ state: 'visible' });

  const shot = join(dir, 'pipeline-page.png');
  await page.screenshot({ path: shot, fullPage: true });
  if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(shot, SCREENSHOT);

  await page.click(badRow);
  await page.waitForFunction(() => document.querySelector('section.pipeline[data-name="build #42"] .details .problem') !== null);
  assert.match(await details.innerText(), /metrics\[0\]: value is not numeric/);

  const finished = { ...running, status: 'success', end: new Date().toISOString(), queue_time: 0 };
  assert.equal((await post(h.intake.endpoint, finished)).status, 202);
  await page.waitForSelector(`${runningRow}[data-status="success"]`, { timeout: 10_000 });
  assert.equal(await page.$eval(`${runningRow} .bar`, (b) => getComputedStyle(b).backgroundColor), RGB.success);
  assert.equal(await page.locator(runningRow).count(), 1, 'the finished job replaces the running one');

  // An older pipeline folds to its title and opens again.
  await page.click('section.pipeline[data-name="nightly #41"] .caret');
  await page.waitForSelector('section.pipeline.folded[data-name="nightly #41"]');
  assert.equal(await page.locator('section.pipeline[data-name="nightly #41"] .row').count(), 0);
  await page.click('section.pipeline[data-name="nightly #41"] .caret');
  await page.waitForSelector('section.pipeline[data-name="nightly #41"] .row[data-name="eslint"]');

  assert.deepEqual(consoleErrors, []);
});
