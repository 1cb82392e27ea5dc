// The shipped intake's answers (src/intake/): 202 {"data":null} for what Datadog accepts; 400
// with an `errors` array whose every item names the event (index, level, name) and the field
// (JSON pointer and resource path) for the schema and the prose rules; request-level problems;
// 413 without inflating a gzip bomb; routes; the bounded store behind the page. Then the package
// as users get it: the `./intake` entry from dist/ in ESM and CJS, and `intake` from the bin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { startIntakeServer, type IntakeServer, type IntakeServerOptions, type Snapshot } from '../src/intake/index.js';

const ROOT = new URL('../', import.meta.url);
const P = '3eacb6f3-ff04-4e10-8a9c-46e6d054024a';

interface Reply {
  status: number;
  body: { data?: null; errors?: Array<{ status: string; title: string; detail: string; source?: { pointer: string }; meta?: { event: number; level?: string; name?: string } }> };
  headers: Headers;
}

async function withIntake(t: { after(fn: () => unknown): void }, o: IntakeServerOptions = {}): Promise<IntakeServer> {
  const intake = await startIntakeServer({ port: 0, ...o });
  t.after(() => intake.close());
  return intake;
}

async function postRaw(url: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Reply> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Reply['body']) : {}, headers: res.headers };
}

const post = (intake: IntakeServer, body: unknown): Promise<Reply> => postRaw(intake.endpoint, JSON.stringify(body));

const iso = (ms: number): string => new Date(ms).toISOString();

function pipeline(o: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now();
  return { level: 'pipeline', unique_id: P, name: 'build', url: 'https://ci.example.com/1', start: iso(now - 5000), end: iso(now - 1000), status: 'success', partial_retry: false, ...o };
}

function step(name: string, o: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Date.now();
  return { level: 'step', id: `${name}-id`, name, pipeline_unique_id: P, pipeline_name: 'build', start: iso(now - 4000), end: iso(now - 2000), status: 'success', ...o };
}

const item = (resource: Record<string, unknown>): object => ({ type: 'cipipeline_resource_request', attributes: { resource } });

test('202 {"data":null} for valid bodies: one event, an array, and the spec’s own examples', async (t) => {
  const intake = await withIntake(t);
  const one = await post(intake, { data: item(pipeline()) });
  assert.equal(one.status, 202);
  assert.deepEqual(one.body, { data: null });
  assert.equal((await post(intake, { data: [item(pipeline()), item(step('compile'))] })).status, 202);

  // The examples of the spec, judged at their own time (the 18-hour rule needs a "now").
  const dir = new URL('test/fixtures/examples/', ROOT);
  for (const f of ['send-pipeline-event.json', 'send-running-job-event.json', 'send-several-pipeline-events.json']) {
    const text = readFileSync(new URL(f, dir), 'utf8');
    const start = Date.parse(/"start": ?"([^"]+)"/.exec(text)![1]!);
    const at = await withIntake(t, { now: () => start + 60_000 });
    const r = await postRaw(at.endpoint, text);
    assert.equal(r.status, 202, `${f}: ${JSON.stringify(r.body)}`);
  }
});

test('400: every error names the event (index, level, name) and the field, only for the events at fault', async (t) => {
  const intake = await withIntake(t);
  const r = await post(intake, {
    data: [
      item(pipeline()),
      item(step('compile', { end: 'yesterday' })),
      item(step('test', { id: undefined, status: 'passed' })),
      item({ level: 'stage ', name: 'odd' }),
    ],
  });
  assert.equal(r.status, 400);
  const errors = r.body.errors!;
  const byPointer = new Map(errors.map((e) => [e.source?.pointer, e]));
  assert.deepEqual([...byPointer.keys()].sort(), [
    '/data/1/attributes/resource/end',
    '/data/2/attributes/resource/id',
    '/data/2/attributes/resource/status',
    '/data/3/attributes/resource/level',
  ]);
  const end = byPointer.get('/data/1/attributes/resource/end')!;
  assert.equal(end.status, '400');
  assert.equal(end.detail, 'event 1 (step "compile"): field end (/data/1/attributes/resource/end): must match format "date-time", got "yesterday"');
  assert.deepEqual(end.meta, { event: 1, level: 'step', name: 'compile' });
  assert.equal(byPointer.get('/data/2/attributes/resource/id')!.detail, 'event 2 (step "test"): field id (/data/2/attributes/resource/id): is required');
  assert.match(byPointer.get('/data/2/attributes/resource/status')!.detail, /^event 2 \(step "test"\): field status .*must be one of "success", "error", got "passed"$/);
  assert.match(byPointer.get('/data/3/attributes/resource/level')!.detail, /^event 3 \(level "stage " "odd"\): field level .*must be one of pipeline, stage, job, step, got "stage "$/);
  // Only the variant the level selects speaks: no "must be equal to constant" from the other five.
  for (const e of errors) assert.doesNotMatch(e.detail, /constant|oneOf|exactly one schema/, e.detail);
});

test('400: the prose rules, on their event and field', async (t) => {
  const intake = await withIntake(t);
  const old = Date.now() - 19 * 3_600_000;
  const r = await post(intake, {
    data: [
      item(step('a', { git: { repository_url: 'https://x', sha: 'a'.repeat(40), author_email: 'a@b.c', branch: 'main', tag: 'v1' } })),
      item(step('b', { tags: ['team:ci', 'novalue'], metrics: ['coverage:high'] })),
      item(step('c', { start: iso(old - 1000), end: iso(old) })),
      item(step('d', { git: { repository_url: 'https://x', sha: 'a'.repeat(40), author_email: 'a@b.c', branch: 'main', commit_time: 'noon' } })),
    ],
  });
  assert.equal(r.status, 400);
  const details = r.body.errors!.map((e) => e.detail);
  assert.deepEqual(details, [
    'event 0 (step "a"): field git (/data/0/attributes/resource/git): both tag and branch given; the spec says one, not both',
    'event 1 (step "b"): field tags[1] (/data/1/attributes/resource/tags/1): not key:value ("novalue")',
    'event 1 (step "b"): field metrics[0] (/data/1/attributes/resource/metrics/0): value is not numeric ("coverage:high")',
    'event 2 (step "c"): field end (/data/2/attributes/resource/end): end is more than 18 hours in the past',
    'event 3 (step "d"): field git.commit_time (/data/3/attributes/resource/git/commit_time): not RFC3339',
  ]);
  // Over 1000 events in one request: a request-level error.
  const many = await post(intake, { data: Array.from({ length: 1001 }, (_, i) => item(step(`s${i}`))) });
  assert.equal(many.status, 400);
  assert.deepEqual(
    many.body.errors!.map((e) => e.detail),
    ['request: field /data (/data): data has 1001 events; the endpoint accepts up to 1000 per request'],
  );
});

test('request-level problems: not JSON, not an object, wrong content type, bad gzip; gzip and deflate bodies are read', async (t) => {
  const intake = await withIntake(t);
  const notJson = await postRaw(intake.endpoint, '{"data": [');
  assert.equal(notJson.status, 400);
  assert.match(notJson.body.errors![0]!.detail, /^request: .*body is not JSON$/);
  const array = await post(intake, [item(pipeline())]);
  assert.equal(array.status, 400);
  assert.match(array.body.errors![0]!.detail, /the body must be a JSON object with a "data" member/);
  const nullData = await post(intake, { data: null });
  assert.match(nullData.body.errors![0]!.detail, /field \/data .*must be an event object or an array of event objects, got null/);
  const notEvent = await post(intake, { data: [item(pipeline()), 'x'] });
  assert.equal(notEvent.body.errors![0]!.detail, 'event 1 (event): field /data/1 (/data/1): must be an event object, got "x"');
  const text = await postRaw(intake.endpoint, JSON.stringify({ data: item(pipeline()) }), { 'content-type': 'text/plain' });
  assert.equal(text.status, 400);
  assert.match(text.body.errors![0]!.detail, /Content-Type is not application\/json \(got "text\/plain"\)/);
  const gz = await postRaw(intake.endpoint, gzipSync(JSON.stringify({ data: item(pipeline()) })), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  assert.equal(gz.status, 202);
  const badGz = await postRaw(intake.endpoint, Buffer.from('not gzip at all'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  assert.equal(badGz.status, 400);
  assert.match(badGz.body.errors![0]!.detail, /not valid gzip/);
  const br = await postRaw(intake.endpoint, 'x', { 'content-type': 'application/json', 'content-encoding': 'br' });
  assert.equal(br.status, 400);
  assert.match(br.body.errors![0]!.detail, /Content-Encoding "br" is not supported/);
});

test('413 above the body limit, before and after decompression (a gzip bomb is not inflated past it)', async (t) => {
  const intake = await withIntake(t, { maxBodyBytes: 64 * 1024 });
  const big = await post(intake, { data: item(pipeline({ name: 'x'.repeat(100_000) })) });
  assert.equal(big.status, 413);
  assert.match(big.body.errors![0]!.detail, /larger than this intake's limit of 65536 bytes/);
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
  assert.ok(bomb.length < 64 * 1024);
  const r = await postRaw(intake.endpoint, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  assert.equal(r.status, 413);
  // Still serving.
  assert.equal((await post(intake, { data: item(pipeline()) })).status, 202);
});

test('routes: the page (inline, nothing external), the snapshot, /healthz, 404 and 405', async (t) => {
  const intake = await withIntake(t);
  const page = await fetch(intake.url + '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const html = await page.text();
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i, 'the page loads nothing from elsewhere');
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/i);
  assert.equal((await fetch(intake.url + '/healthz')).status, 200);
  const missing = await fetch(intake.url + '/nope');
  assert.equal(missing.status, 404);
  const get = await fetch(intake.endpoint);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');

  const s0 = (await (await fetch(intake.url + '/api/intake/snapshot')).json()) as Snapshot;
  assert.equal(s0.pipelines.length, 0);
  await post(intake, { data: [item(pipeline()), item(step('compile'))] });
  const s1 = (await (await fetch(`${intake.url}/api/intake/snapshot?since=${s0.revision}`)).json()) as Snapshot;
  assert.ok(s1.revision > s0.revision);
  assert.deepEqual(s1.pipelines.map((p) => [p.id, p.events.map((e) => e.key).sort()]), [[P, ['pipeline:' + P, 'step:compile-id']]]);
  const same = (await (await fetch(`${intake.url}/api/intake/snapshot?since=${s1.revision}`)).json()) as { unchanged?: boolean };
  assert.equal(same.unchanged, true);
});

test('the page’s store: bounded pipelines and events; a running job replaced by its finished event; rejected events kept with their problems', async (t) => {
  const intake = await withIntake(t, { limits: { maxPipelines: 2, maxEventsPerPipeline: 3 } });
  const ids = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];
  for (const id of ids) assert.equal((await post(intake, { data: item(pipeline({ unique_id: id, name: id.slice(0, 4) })) })).status, 202);
  let snap = intake.store.snapshot(Date.now());
  assert.deepEqual(snap.pipelines.map((p) => p.id), ids.slice(1), 'the least recently updated pipeline is forgotten');
  assert.equal(snap.counts.forgottenPipelines, 1);

  const now = Date.now();
  const job = { level: 'job', id: 'j1', name: 'deploy', pipeline_unique_id: ids[2], pipeline_name: 'x', url: 'https://ci/j', start: iso(now - 3000), status: 'running' };
  assert.equal((await post(intake, { data: item(job) })).status, 202);
  assert.equal((await post(intake, { data: item({ ...job, status: 'success', end: iso(now) }) })).status, 202);
  snap = intake.store.snapshot(Date.now());
  const jobs = snap.pipelines.find((p) => p.id === ids[2])!.events.filter((e) => e.level === 'job');
  assert.deepEqual(jobs.map((e) => [e.key, e.status, e.end !== null]), [['job:j1', 'success', true]]);

  // A 400 keeps the events at fault (with their problems), not their innocent neighbours.
  const bad = await post(intake, { data: [item(step('fine', { pipeline_unique_id: ids[2] })), item(step('bad', { pipeline_unique_id: ids[2], metrics: ['x:y'] }))] });
  assert.equal(bad.status, 400);
  snap = intake.store.snapshot(Date.now());
  const events = snap.pipelines.find((p) => p.id === ids[2])!.events;
  assert.deepEqual(events.map((e) => e.name).sort(), ['3333', 'bad', 'deploy']);
  const rejected = events.find((e) => e.name === 'bad')!;
  assert.equal(rejected.accepted, false);
  assert.deepEqual(rejected.problems, [{ field: 'metrics[0]', message: 'value is not numeric ("x:y")' }]);
  assert.equal(snap.rejected.length, 1);
  assert.match(snap.rejected[0]!.details[0]!, /^event 1 \(step "bad"\): field metrics\[0\]/);

  // A full pipeline counts what it does not keep.
  await post(intake, { data: [item(step('more1', { pipeline_unique_id: ids[2] })), item(step('more2', { pipeline_unique_id: ids[2] }))] });
  snap = intake.store.snapshot(Date.now());
  const full = snap.pipelines.find((p) => p.id === ids[2])!;
  assert.equal(full.events.length, 3);
  assert.equal(full.notKept, 2);
});

test('the shipped schema copy is the spec’s (the same file as the test fixture)', () => {
  assert.equal(
    readFileSync(new URL('src/intake/pipeline-event-request.schema.json', ROOT), 'utf8'),
    readFileSync(new URL('test/fixtures/pipeline-event-request.schema.json', ROOT), 'utf8'),
  );
});

const dist = (f: string): URL => new URL(`dist/${f}`, ROOT);
function needBuild(): void {
  for (const f of ['intake.js', 'intake.cjs', 'intake.d.ts', 'cli.js']) assert.ok(existsSync(dist(f)), `dist/${f} is missing: run npm run build`);
}

test('the ./intake entry from dist/, ESM and CJS: the schema is inside, a body is validated', async (t) => {
  needBuild();
  const pkg = JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { exports: Record<string, unknown>; dependencies: Record<string, string> };
  assert.ok(pkg.exports['./intake'], 'package.json exports ./intake');
  assert.ok(pkg.dependencies.ajv && pkg.dependencies['ajv-formats'], 'Ajv is a runtime dependency of the intake');
  const esm = (await import(dist('intake.js').href)) as typeof import('../src/intake/index.js');
  const cjs = createRequire(import.meta.url)(dist('intake.cjs').pathname) as typeof import('../src/intake/index.js');
  for (const mod of [esm, cjs]) {
    const intake = await mod.startIntakeServer({ port: 0 });
    t.after(() => intake.close());
    assert.equal((await post(intake, { data: item(pipeline()) })).status, 202);
    const bad = await post(intake, { data: item(step('x', { end: 'never' })) });
    assert.equal(bad.status, 400);
    assert.match(bad.body.errors![0]!.detail, /field end .*date-time/);
  }
});

test('bin: `intake --port 0` prints "listening on", validates, serves the page, exits 0 on SIGTERM; bad flags exit 2', { timeout: 30_000 }, async () => {
  needBuild();
  const bin = dist('cli.js').pathname;
  const child = spawn(process.execPath, [bin, 'intake', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening on" line in 15 s:\n${out}\n${err}`)), 15_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`exited ${code}:\n${out}\n${err}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const ok = await postRaw(url + '/api/v2/ci/pipeline', JSON.stringify({ data: item(pipeline()) }));
    assert.equal(ok.status, 202);
    const bad = await postRaw(url + '/api/v2/ci/pipeline', JSON.stringify({ data: item(step('x', { status: 'ok' })) }));
    assert.equal(bad.status, 400);
    assert.match(bad.body.errors![0]!.detail, /^event 0 \(step "x"\): field status/);
    assert.match(await (await fetch(url + '/')).text(), /<title>CI pipelines/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, err);
  // A line per request; a 400's problems under it.
  assert.match(out, /^\S+ 202 accepted 1 event\(s\), \d+ bytes$/m);
  assert.match(out, /^\S+ 400 answered 1 event\(s\), \d+ bytes\n {2}event 0 \(step "x"\): field status/m);

  const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let o = '';
      let e = '';
      c.stdout.on('data', (b: Buffer) => (o += b.toString()));
      c.stderr.on('data', (b: Buffer) => (e += b.toString()));
      c.on('exit', (code) => resolve({ code, out: o, err: e }));
    });
  const help = await run(['intake', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /--host <address>/);
  assert.match(help.out, /--port <n>/);
  const badPort = await run(['intake', '--port', 'http']);
  assert.equal(badPort.code, 2);
  assert.equal(badPort.err, 'datadog-ci-pipeline-exporter intake: --port must be an integer from 0 to 65535, got "http"\n');
  const unknown = await run(['intake', '--verbose']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err.split('\n')[0]!, /^datadog-ci-pipeline-exporter intake: Unknown option '--verbose'/);
});

test('any JSON body: the checks and the page store never throw, and every problem names an event that exists', async () => {
  const fc = await import('fast-check');
  const { validateBody, PipelineStore, formatProblem, defaultAnswerFor } = await import('../src/intake/index.js');
  const field = fc.constantFrom('level', 'name', 'id', 'status', 'start', 'end', 'git', 'tags', 'metrics', 'unique_id', 'pipeline_unique_id', 'job_id', 'stage_id', 'error', '__proto__');
  const value = fc.oneof(
    fc.constantFrom('pipeline', 'stage', 'job', 'step', 'running', 'success', 'error', iso(Date.now()), 'x:1', null),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const resource = fc.dictionary(field, value, { maxKeys: 8 });
  const event = fc.oneof(fc.record({ attributes: fc.record({ resource }) }), fc.jsonValue({ maxDepth: 2 }));
  const body = fc.oneof(fc.record({ data: fc.oneof(event, fc.array(event, { maxLength: 5 })) }), fc.jsonValue({ maxDepth: 3 }));
  const store = new PipelineStore({ maxPipelines: 5, maxEventsPerPipeline: 10, maxRejected: 3 });
  let seq = 0;
  fc.assert(
    fc.property(body, (b) => {
      const { problems, notes } = validateBody(b, Date.now());
      const data = (b as { data?: unknown } | null)?.data;
      const n = Array.isArray(data) ? data.length : data === undefined || data === null ? 0 : 1;
      const events = Array.isArray(data) ? data : n ? [data] : [];
      for (const p of [...problems, ...notes]) {
        assert.ok(p.event === null || (p.event >= 0 && p.event < n), `problem on event ${p.event} of ${n}`);
        assert.ok(!formatProblem(p, events).includes('\n'), 'one line per problem');
      }
      const answer = defaultAnswerFor(problems, events);
      if (answer.status === 202) store.accepted(seq++, events, notes, Date.now());
      else store.rejectedRequest(seq++, events, problems, [], Date.now());
      JSON.stringify(store.snapshot(Date.now()));
    }),
    { numRuns: 400, seed: 11 },
  );
});
