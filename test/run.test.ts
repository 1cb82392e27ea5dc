// The `run` command as users run it: the built bin (dist/cli.js; the tsx entry when dist is older
// than src), real child processes and shells, the validating intake on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXPORTER_FLAGS } from '../src/cli/exporter-options.js';
import { randomHex } from '../src/cli/run.js';
import { BUILT_CLI, builtCliIsCurrent, REPO_ROOT } from '../testkit/built-cli.js';
import { startIntake } from '../testkit/intake.js';


/** How to start the bin: the build when it is current, else the sources through tsx. */
const CLI: string[] = builtCliIsCurrent()
  ? [process.execPath, BUILT_CLI]
  : [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'bin.ts')];
const CLI_SH = CLI.map((a) => `'${a}'`).join(' ');

/** The test's environment without whatever the machine has (an API key, an endpoint, a parent trace). */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1', CLI: CLI_SH };
  for (const k of Object.keys(env)) if (k.startsWith('DD_') || k === 'TRACEPARENT' || k === 'TRACESTATE' || k === 'BAGGAGE') delete env[k];
  return { ...env, ...extra };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(args: string[], env: NodeJS.ProcessEnv, onStdout?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(CLI[0]!, [...CLI.slice(1), 'run', ...args], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += String(c);
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}

test('three nested runs through a shell script form one exactly linked pipeline; exit codes 0, 3, 127 and a signal are preserved', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const dir = mkdtempSync(join(tmpdir(), 'run-test-'));
  const script = join(dir, 'build.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      // job → step (exit 3), through a second shell
      `eval "$CLI run --name compile --url https://ci.example/b/1/compile -- sh -c '$CLI run --name unit -- sh -c \\"exit 3\\"; echo step=\\$?; exit 0'"`,
      'echo compile=$?',
      'eval "$CLI run --name missing --url https://ci.example/b/1/missing -- definitely-not-a-command-xyz"',
      'echo missing=$?',
      `eval "$CLI run --name killed --url https://ci.example/b/1/killed -- sh -c 'kill -TERM \\$\\$'"`,
      'echo killed=$?',
      'exit 0',
      '',
    ].join('\n'),
  );
  const r = await run(['--url', 'https://ci.example/b/1', '--name', 'build', '--', 'sh', script], cleanEnv({ DD_CI_PIPELINE_ENDPOINT: intake.endpoint }));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /step=3\ncompile=0\nmissing=127\nkilled=143\n/);
  assert.equal(r.stderr.match(/command not found: "definitely-not-a-command-xyz"/g)?.length, 1, r.stderr);
  assert.deepEqual(intake.invalid, []);

  const events = intake.events.map((e) => e.attributes.resource);
  const finished = (name: string): Record<string, unknown> => {
    const found = events.filter((e) => e.name === name && e.status !== 'running');
    assert.equal(found.length, 1, `${name}: ${JSON.stringify(events)}`);
    return found[0]!;
  };
  const pipeline = finished('build');
  const compile = finished('compile');
  const unit = finished('unit');
  const missing = finished('missing');
  const killed = finished('killed');
  assert.equal(pipeline.level, 'pipeline');
  assert.equal(pipeline.status, 'success');
  for (const job of [compile, missing, killed]) {
    assert.equal(job.level, 'job');
    assert.equal(job.pipeline_unique_id, pipeline.unique_id);
    assert.equal(job.pipeline_name, 'build');
  }
  assert.equal(compile.status, 'success');
  assert.equal(unit.level, 'step');
  assert.equal(unit.status, 'error');
  assert.deepEqual(unit.error, { message: 'exit code 3' });
  assert.equal(unit.job_id, compile.id);
  assert.equal(unit.job_name, 'compile');
  assert.equal(unit.pipeline_unique_id, pipeline.unique_id);
  assert.equal(missing.status, 'error');
  assert.match(String((missing.error as { message: string }).message), /command not found/);
  assert.equal(killed.status, 'error');
  assert.match(String((killed.error as { message: string }).message), /SIGTERM \(exit code 143\)/);
  // One trace: every ID shares the pipeline's trace prefix.
  const prefix = String(pipeline.unique_id).slice(0, 19);
  for (const e of events) assert.equal(String(e.unique_id ?? e.id).slice(0, 19), prefix);
  // Running events for the pipeline and the job whose commands ran on (nested runs), with the
  // finished event's IDs, sent before it.
  for (const name of ['build', 'compile']) {
    const at = events.findIndex((e) => e.name === name && e.status === 'running');
    assert.ok(at >= 0, name);
    const running = events[at]!;
    assert.equal(running.unique_id ?? running.id, finished(name).unique_id ?? finished(name).id);
    const fin = finished(name);
    assert.ok(at < events.findIndex((e) => e === fin), `${name}: the running event came after the finished one`);
  }
  // A command that ended before the exporter could send (not found: at once) gets no running
  // event: its finished event, which would replace it, goes out in the same breath.
  assert.equal(events.filter((e) => e.name === 'missing' && e.status === 'running').length, 0);
  // `killed` ends within milliseconds too; whether its running event went depends on the machine.
  assert.ok(events.filter((e) => e.name === 'killed' && e.status === 'running').length <= 1);
});

test('no API key and no endpoint: one line, the command runs anyway with its exit code', async () => {
  const r = await run(['--', 'sh', '-c', 'echo ran; exit 5'], cleanEnv());
  assert.equal(r.code, 5);
  assert.equal(r.stdout, 'ran\n');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /no Datadog API key .* running the command without telemetry/);
});

test('endpoint down: waits at most --shutdown-timeout-ms and keeps the exit code', async () => {
  // A port that refuses connections: bound, then closed.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const r = await run(['--endpoint', `http://127.0.0.1:${port}/api/v2/ci/pipeline`, '--url', 'https://ci.example/x', '--shutdown-timeout-ms', '300', '--', 'sh', '-c', 'exit 4'], cleanEnv());
  assert.equal(r.code, 4, r.stderr);
  // A guard against a hang, not a speed figure (the bench measures run's overhead).
  assert.ok(r.ms < 20_000, `${r.ms} ms`);
});

test('SIGINT and SIGTERM are forwarded to the command', async () => {
  for (const [signal, code] of [['SIGINT', 7], ['SIGTERM', 8]] as const) {
    let sent = false;
    const r = await run(['--', 'sh', '-c', `trap 'exit ${code}' INT TERM; echo ready; i=0; while [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done`], cleanEnv(), (out, child) => {
      if (!sent && out.includes('ready')) {
        sent = true;
        child.kill(signal);
      }
    });
    // (The loop ends by itself after ~20 s: a lost signal fails the test instead of hanging it.)
    assert.equal(r.code, code, `${signal}: ${r.stderr}`);
  }
});

test('--help lists every flag', async () => {
  const r = await run(['--help'], cleanEnv());
  assert.equal(r.code, 0);
  for (const flag of [...EXPORTER_FLAGS.map((f) => f.flag), 'level', 'name', 'url', 'attr', 'no-detect', 'help']) assert.ok(r.stdout.includes(`--${flag}`), flag);
});

test('--attr, --level and --name set the span; a bad flag is one line and exit 2', async (t) => {
  const intake = await startIntake();
  t.after(() => intake.close());
  const r = await run(['--level', 'job', '--name', 'deploy', '--url', 'https://ci.example/d', '--attr', 'ci.pipeline_unique_id=0b5d6c1e-0000-4000-8000-000000000001', '--attr', 'ci.pipeline_name=release', '--endpoint', intake.endpoint, '--', 'true'], cleanEnv());
  assert.equal(r.code, 0, r.stderr);
  const job = intake.events.map((e) => e.attributes.resource).find((e) => e.status === 'success');
  assert.equal(job?.level, 'job');
  assert.equal(job?.name, 'deploy');
  assert.equal(job?.pipeline_name, 'release');
  const bad = await run(['--no-such-flag', 'x', '--', 'true'], cleanEnv());
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Put the command after --/);
});

test("the package's bin is CommonJS: a `run` that sends its span never starts Node's ESM loader, nor loads node:http2 (undici's HTTP/2 client is left out), node:crypto (IDs from Math.random, as the SDK makes them) or node:fs/promises (detection reads through node:fs), nor node:http (undici gets a stand-in)", { skip: !builtCliIsCurrent() && 'dist/ is not current (npm run build)' }, async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  const bin = join(REPO_ROOT, pkg.bin['datadog-ci-pipeline-exporter']!);
  assert.equal(bin, BUILT_CLI);
  const intake = await startIntake();
  t.after(() => intake.close());
  // At exit, the Node internals the process loaded: an ES module (the bin, a chunk, an import())
  // loads the ESM loader's module jobs; a CommonJS bin whose chunks are require()d does not.
  const probe = join(mkdtempSync(join(tmpdir(), 'run-test-')), 'probe.cjs');
  writeFileSync(probe, "process.on('exit', () => process.stderr.write('\\n@esm ' + process.moduleLoadList.filter((m) => m.includes('modules/esm/module_job')).length + ' @http2 ' + process.moduleLoadList.filter((m) => /\\bhttp2\\b/.test(m)).length + ' @crypto ' + process.moduleLoadList.filter((m) => /\\bcrypto\\b/.test(m)).length + ' @fs/promises ' + process.moduleLoadList.filter((m) => m.includes('fs/promises')).length + ' @http ' + process.moduleLoadList.filter((m) => m === 'NativeModule http').length + '\\n'));\n");
  const runIt = (nodeFlags: string[], name: string): Promise<{ code: number | null; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [...nodeFlags, '--require', probe, bin, 'run', '--endpoint', intake.endpoint, '--url', 'https://ci.example/b/9', '--name', name, '--', 'true'], { env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += String(c)));
      child.on('close', (code) => resolve({ code, stderr }));
    });
  const r = await runIt([], 'cjs');
  assert.equal(r.code, 0, r.stderr);
  // Nor node:http: undici's two uses of it get a stand-in (tsup.config.ts, undiciHttp)…
  assert.match(r.stderr, /@esm 0 @http2 0 @crypto 0 @fs\/promises 0 @http 0\n/, r.stderr);
  // …which asks node:http for its header cap when the process was given one.
  const flagged = await runIt(['--max-http-header-size=32768'], 'flagged');
  assert.equal(flagged.code, 0, flagged.stderr);
  assert.match(flagged.stderr, /@http 1\n/, flagged.stderr);
  assert.deepEqual(intake.events.map((e) => [e.attributes.resource.name, e.attributes.resource.status]), [['cjs', 'success'], ['flagged', 'success']]);
});

test('run: its trace and span IDs are random hex of the W3C lengths, never all zeros', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const trace = randomHex(16);
    const span = randomHex(8);
    assert.match(trace, /^[0-9a-f]{32}$/);
    assert.match(span, /^[0-9a-f]{16}$/);
    assert.doesNotMatch(trace, /^0+$/);
    seen.add(span);
  }
  assert.equal(seen.size, 2000, 'no span ID twice in 2,000');
  // Every hex digit turns up in every position: no digit is stuck.
  const digits = Array.from({ length: 16 }, () => new Set<string>());
  for (let i = 0; i < 2000; i++) for (const [k, c] of [...randomHex(8)].entries()) digits[k]!.add(c);
  for (const d of digits) assert.equal(d.size, 16);
});
