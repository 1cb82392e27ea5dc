// `npm run demo`: an example build instrumented with OpenTelemetry, exported as Datadog CI
// Visibility pipeline events. With DD_API_KEY set the events go to Datadog (site from DD_SITE);
// without it they go to the embedded local intake, which validates every request body against the
// official schema, and the demo prints what arrived as a tree.
//
// The build does small real work (git, file hashing, child processes) so that spans have real
// durations and real failures; one test step fails on purpose, which turns its job, stage and the
// pipeline to `error`.
//
// DEMO_EVENTS_FILE=path (local intake only) writes the accepted events there as JSON.
// `npm run demo -- --keep` (local intake only) keeps the intake running afterwards, so that the
// pipeline page (printed address) can be looked at; Ctrl+C stops it.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { DatadogCIPipelineExporter } from '../src/index.js';
import { formatProblem, startIntakeServer, type IntakeServer } from '../src/intake/index.js';
import { renderTree } from './tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PIPELINE_NAME = 'datadog-ci-pipeline-exporter demo build';
const exec = promisify(execFile);

type Level = 'pipeline' | 'stage' | 'job' | 'step';

/** A failure below a span, carrying the path to the item that failed so each parent can say where. */
class BuildFailure extends Error {
  constructor(
    readonly path: string[],
    readonly root: Error,
  ) {
    // The root cause is on the failing step's own event; parents name the path to it.
    super(`${path.join(' › ')} failed`);
    this.name = 'BuildFailure';
  }
}

class CommandFailed extends Error {
  override name = 'CommandFailed';
}

/** Runs build units as spans. Context is passed explicitly: no global context manager is needed. */
class Build {
  /** Labelled spans started: the number of events the intake should receive. */
  labelled = 0;

  constructor(private readonly tracer: Tracer) {}

  async unit<T>(
    parent: Context,
    level: Level | undefined,
    name: string,
    attributes: Attributes,
    fn: (ctx: Context, span: Span) => Promise<T>,
  ): Promise<T> {
    const attrs: Attributes = level ? { 'ci.level': level, ...attributes } : attributes;
    if (level) this.labelled++;
    const span = this.tracer.startSpan(name, { attributes: attrs }, parent);
    try {
      return await fn(trace.setSpan(parent, span), span);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      // A parent failed because of a child: the child's event holds the exception, the parent's
      // status message names the path to it.
      if (!(e instanceof BuildFailure)) span.recordException(e);
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
      if (!level) throw e;
      const path = [`${level} "${name}"`, ...(e instanceof BuildFailure ? e.path : [])];
      throw new BuildFailure(path, e instanceof BuildFailure ? e.root : e);
    } finally {
      span.end();
    }
  }
}

/** Runs node in a child process under an unlabelled "spawn" span, as build tools' process spans are. */
async function node(build: Build, ctx: Context, label: string, args: string[]): Promise<string> {
  return build.unit(ctx, undefined, `spawn node ${label}`, { 'process.executable.name': 'node' }, async (_c, span) => {
    try {
      const { stdout } = await exec(process.execPath, args, { timeout: 5000, cwd: ROOT });
      span.setAttribute('process.exit.code', 0);
      return stdout.trim();
    } catch (err) {
      const e = err as { code?: number | string; stderr?: string; message?: string };
      // Node prints the thrown error's "Name: message" line among the source excerpt and the stack.
      const stderr = String(e.stderr ?? '');
      const reason =
        stderr.match(/^[A-Za-z]*Error\b.*$/m)?.[0] ?? stderr.trim().split('\n').pop() ?? e.message ?? 'unknown error';
      if (typeof e.code === 'number') span.setAttribute('process.exit.code', e.code);
      throw new CommandFailed(`node ${label} exited with code ${String(e.code)}: ${reason}`);
    }
  });
}

interface GitInfo {
  repository_url: string;
  sha: string;
  branch?: string;
  tag?: string;
  author_email: string;
  author_name?: string;
  author_time?: string;
  committer_email?: string;
  committer_name?: string;
  commit_time?: string;
  message?: string;
}

const FALLBACK_GIT: GitInfo = {
  repository_url: 'https://git.example.com/datadog-ci-pipeline-exporter.git',
  sha: '4f1c2a9e7b3d5c8e0a6f9b2d4c7e1a3f5b8d0c2e',
  branch: 'main',
  author_email: 'demo@example.com',
  author_name: 'Demo Author',
};

/** Credentials in a remote URL (https://user:token@host/...) must never end up in an event. */
function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return url; // scp-like "git@host:org/repo.git" carries no secret
  }
}

async function detectGit(): Promise<{ git: GitInfo; detected: boolean }> {
  const git = async (...args: string[]): Promise<string | undefined> => {
    try {
      const { stdout } = await exec('git', args, { cwd: ROOT, timeout: 3000 });
      return stdout.trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const sha = await git('rev-parse', 'HEAD');
  if (!sha) return { git: FALLBACK_GIT, detected: false };
  const [ref, tag, remote, log] = await Promise.all([
    git('rev-parse', '--abbrev-ref', 'HEAD'),
    git('describe', '--tags', '--exact-match', 'HEAD'),
    git('config', '--get', 'remote.origin.url'),
    git('log', '-1', '--format=%ae%x00%an%x00%aI%x00%ce%x00%cn%x00%cI%x00%s'),
  ]);
  const [authorEmail, authorName, authorTime, committerEmail, committerName, commitTime, subject] = (log ?? '').split('\0');
  const info: GitInfo = {
    repository_url: remote ? withoutCredentials(remote) : FALLBACK_GIT.repository_url,
    sha,
    author_email: authorEmail || FALLBACK_GIT.author_email,
    author_name: authorName || undefined,
    author_time: authorTime || undefined,
    committer_email: committerEmail || undefined,
    committer_name: committerName || undefined,
    commit_time: commitTime || undefined,
    message: subject || undefined,
  };
  // Datadog wants a tag or a branch, not both; a detached HEAD on a tag is a tag build.
  if (ref && ref !== 'HEAD') info.branch = ref;
  else if (tag) info.tag = tag;
  else info.branch = process.env.GITHUB_HEAD_REF || process.env.GITHUB_REF_NAME || 'HEAD';
  return { git: info, detected: true };
}

function gitAttributes(git: GitInfo): Attributes {
  const attrs: Attributes = {};
  for (const [k, v] of Object.entries(git)) if (v !== undefined) attrs[`ci.git.${k}`] = v;
  return attrs;
}

async function sourceFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const dir of ['src', 'examples', 'testkit']) {
    const entries = await readdir(join(ROOT, dir), { recursive: true, withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isFile() && e.name.endsWith('.ts')) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

/** The example build: 4 stages, 6 jobs (one without a stage), 11 steps; one step fails. */
async function runBuild(build: Build, pipelineUrl: string, runId: string): Promise<void> {
  const jobUrl = (slug: string): string => `${pipelineUrl}/jobs/${slug}`;
  await build
    .unit(
      ROOT_CONTEXT,
      'pipeline',
      PIPELINE_NAME,
      {
        'ci.url': pipelineUrl,
        'ci.pipeline_id': runId,
        'ci.tags': ['team:ci-tools', 'demo:true'],
        'ci.parameters.node_version': process.version,
      },
      async (pipeline, pipelineSpan) => {
        await build.unit(pipeline, 'stage', 'prepare', {}, async (stage) => {
          await build.unit(stage, 'job', 'checkout', { 'ci.url': jobUrl('checkout') }, async (job) => {
            await build.unit(job, 'step', 'detect git metadata', {}, async (_c, span) => {
              const { git, detected } = await detectGit();
              span.setAttribute('ci.tags', [`git.detected:${detected}`]);
              // The pipeline span is still open: git set on it is inherited by every descendant.
              pipelineSpan.setAttributes(gitAttributes(git));
            });
            await build.unit(job, 'step', 'read package manifest', {}, async (_c, span) => {
              const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
                dependencies?: object;
                devDependencies?: object;
              };
              span.setAttribute('ci.metrics', [
                `dependencies:${Object.keys(pkg.dependencies ?? {}).length}`,
                `dev_dependencies:${Object.keys(pkg.devDependencies ?? {}).length}`,
              ]);
            });
          });
        });

        // A job directly under the pipeline, with no stage: supported by Datadog and the exporter.
        await build.unit(pipeline, 'job', 'lint', { 'ci.url': jobUrl('lint'), 'ci.tags': ['kind:lint'] }, async (job) => {
          await build.unit(job, 'step', 'syntax check eslint.config.js', {}, async (step) => {
            await node(build, step, '--check', ['--check', 'eslint.config.js']);
          });
          await build.unit(job, 'step', 'scan sources', {}, async (_c, span) => {
            const files = await sourceFiles();
            let lines = 0;
            for (const f of files) lines += (await readFile(f, 'utf8')).split('\n').length;
            span.setAttribute('ci.metrics', [`files:${files.length}`, `lines:${lines}`]);
          });
        });

        await build.unit(pipeline, 'stage', 'build', {}, async (stage) => {
          // Jobs of a stage run in parallel, so their spans interleave in the exporter's batches.
          await Promise.all([
            build.unit(stage, 'job', 'compile', { 'ci.url': jobUrl('compile') }, async (job) => {
              // An unlabelled "phase" span between the job and its steps, as build tools create.
              await build.unit(job, undefined, 'phase: compile', { 'build.phase': 'compile' }, async (phase) => {
                await build.unit(phase, 'step', 'hash sources', {}, async (_c, span) => {
                  const hash = createHash('sha256');
                  for (const f of await sourceFiles()) hash.update(await readFile(f));
                  span.setAttribute('ci.tags', [`sources.sha256:${hash.digest('hex').slice(0, 16)}`]);
                });
                await build.unit(phase, 'step', 'compute primes in a worker', {}, async (step) => {
                  await node(build, step, '-e primes', [
                    '-e',
                    `let n=0;for(let i=2;i<50000;i++){let p=true;for(let j=2;j*j<=i;j++)if(i%j===0){p=false;break}if(p)n++}console.log(n)`,
                  ]);
                });
              });
            }),
            build.unit(stage, 'job', 'bundle', { 'ci.url': jobUrl('bundle') }, async (job) => {
              await build.unit(job, 'step', 'gzip sources', {}, async (_c, span) => {
                const raw = Buffer.concat(await Promise.all((await sourceFiles()).map((f) => readFile(f))));
                span.setAttribute('ci.metrics', [`bytes:${raw.length}`, `gzip_bytes:${gzipSync(raw).length}`]);
              });
            }),
          ]);
        });

        let testFailure: unknown;
        await build
          .unit(pipeline, 'stage', 'test', {}, async (stage) => {
            await build.unit(stage, 'job', 'unit tests', { 'ci.url': jobUrl('unit-tests') }, async (job) => {
              await build.unit(job, 'step', 'test: tree rendering', {}, async () => {
                const out = renderTree([{ level: 'pipeline', name: 'p', status: 'success', unique_id: 'u' }]);
                if (!out.includes('✔ pipeline p')) throw new Error(`unexpected tree: ${out}`);
              });
              await build.unit(job, 'step', 'test: primes below 100', {}, async (step) => {
                await node(build, step, '-e primes-test', [
                  '-e',
                  `let n=0;for(let i=2;i<100;i++){let p=true;for(let j=2;j*j<=i;j++)if(i%j===0)p=false;if(p)n++}require('node:assert').strictEqual(n,25)`,
                ]);
              });
              // Fails on purpose: the demo shows how a failing step surfaces in Datadog.
              await build.unit(job, 'step', 'test: sum', {}, async (step) => {
                await node(build, step, '-e sum-test', [
                  '-e',
                  `require('node:assert').strictEqual([1,2,3].reduce((a,b)=>a+b), 7, 'sum of [1,2,3] should be 7')`,
                ]);
              });
            });
          })
          .catch((err: unknown) => {
            // Like a CI `always()` step: the report stage runs even though tests failed.
            testFailure = err;
          });

        await build.unit(pipeline, 'stage', 'report', {}, async (stage) => {
          await build.unit(stage, 'job', 'summary', { 'ci.url': jobUrl('summary') }, async (job) => {
            await build.unit(job, 'step', 'summarize results', {}, async (_c, span) => {
              span.setAttribute('ci.tags', [`tests:${testFailure ? 'failed' : 'passed'}`]);
            });
          });
        });

        if (testFailure) throw testFailure;
      },
    )
    .catch((err: unknown) => {
      // The failure is the expected outcome of the demo, already recorded on the spans.
      if (!(err instanceof BuildFailure)) throw err;
    });
}

/** The shipped intake (what `datadog-ci-pipeline-exporter intake` runs), and what it answered. */
interface DemoIntake {
  server: IntakeServer;
  endpoint: string;
  /** Events of requests answered 2xx, in arrival order. */
  events: unknown[];
  requests: Array<{ index: number; events: unknown[]; errors: string[] }>;
  invalid: Array<{ index: number; events: unknown[]; errors: string[] }>;
  close(): Promise<void>;
}

async function startDemoIntake(port: number): Promise<DemoIntake> {
  const events: unknown[] = [];
  const requests: DemoIntake['requests'] = [];
  const invalid: DemoIntake['invalid'] = [];
  const server = await startIntakeServer({
    port,
    hooks: {
      answered(r, status) {
        const req = { index: r.seq, events: r.events, errors: r.problems.map((p) => formatProblem(p, r.events)) };
        requests.push(req);
        if (req.errors.length > 0) invalid.push(req);
        if (status >= 200 && status < 300) events.push(...r.events);
      },
    },
  });
  return { server, endpoint: server.endpoint, events, requests, invalid, close: () => server.close() };
}

function reportIntake(intake: DemoIntake, expected: number, counters: ReturnType<DatadogCIPipelineExporter['getCounters']>): number {
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  console.log('');
  console.log(renderTree(intake.events as Parameters<typeof renderTree>[0], { color }));
  const validated = intake.requests.reduce((n, r) => n + r.events.length, 0);
  let code = 0;
  if (intake.invalid.length > 0) {
    code = 1;
    console.error(`✖ ${intake.invalid.length} of ${intake.requests.length} request(s) failed validation (answered 400):`);
    for (const r of intake.invalid.slice(0, 5)) {
      console.error(`  request #${r.index} (${r.events.length} events):`);
      for (const e of r.errors.slice(0, 10)) console.error(`    ${e}`);
      if (r.errors.length > 10) console.error(`    … ${r.errors.length - 10} more`);
    }
  } else {
    console.log(
      `✔ ${validated} event(s) in ${intake.requests.length} request(s) validated against the official schema and prose rules: all valid`,
    );
  }
  if (intake.events.length !== expected) {
    code = 1;
    console.error(`✖ expected ${expected} event(s), the intake accepted ${intake.events.length}`);
    console.error(`  exporter counters: ${JSON.stringify(counters)}`);
  }
  return code;
}

async function main(): Promise<number> {
  const apiKey = process.env.DD_API_KEY;
  const keep = process.argv.includes('--keep');
  const intake = apiKey ? undefined : await startDemoIntake(keep ? Number(process.env.DEMO_INTAKE_PORT ?? 8126) : 0);
  const runId = String(Date.now());
  const pipelineUrl = `https://ci.example.com/datadog-ci-pipeline-exporter/pipelines/${runId}`;

  const exporter = new DatadogCIPipelineExporter({
    service: 'datadog-ci-pipeline-exporter-demo',
    // The local intake needs no key; with DD_API_KEY set the exporter reads it and DD_SITE itself.
    ...(intake ? { endpoint: intake.endpoint } : {}),
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'datadog-ci-pipeline-exporter-demo',
      'host.name': hostname(),
      'deployment.environment.name': 'demo',
    }),
    // A small batch so that children and their ancestors arrive in different export() calls.
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: 4, scheduledDelayMillis: 100 })],
  });

  console.log(
    intake
      ? `Running the demo build; events go to the local intake at ${intake.endpoint} (set DD_API_KEY to send them to Datadog).`
      : `Running the demo build; events go to Datadog (site ${process.env.DD_SITE || 'datadoghq.com'}).`,
  );
  const started = Date.now();
  const build = new Build(provider.getTracer('datadog-ci-pipeline-exporter-demo'));
  let buildMs = 0;
  try {
    await runBuild(build, pipelineUrl, runId);
    buildMs = Date.now() - started;
  } finally {
    await provider.shutdown().catch(async (err: unknown) => {
      // BatchSpanProcessor rejects when an export in its final flush reported FAILED, and then skips
      // the exporter's own shutdown; run it so that what is left is delivered and summarised.
      console.error(`provider.shutdown() rejected: ${err instanceof Error ? err.message : String(err)}`);
      await exporter.shutdown();
    });
    if (!keep) await intake?.close();
  }
  const counters = exporter.getCounters();
  console.log(
    `Build finished in ${buildMs} ms (${build.labelled} CI spans); exporter flushed in ${Date.now() - started - buildMs} ms.`,
  );

  if (intake) {
    // For inspecting exactly what was sent (and for the end-to-end test).
    if (process.env.DEMO_EVENTS_FILE) await writeFile(process.env.DEMO_EVENTS_FILE, JSON.stringify(intake.events, null, 2));
    const code = reportIntake(intake, build.labelled, counters);
    if (!keep) console.log('To look at the pipeline page of these events: npm run demo -- --keep');
    else {
      console.log(`Pipeline page: ${intake.server.url}/`);
      console.log('The intake keeps running (--keep): open the page in a browser; Ctrl+C stops it.');
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      await intake.close();
    }
    return code;
  }

  if (counters.eventsSent < build.labelled) {
    console.error(`✖ sent ${counters.eventsSent} of ${build.labelled} event(s); exporter counters: ${JSON.stringify(counters)}`);
    return 1;
  }
  console.log(
    `✔ sent ${counters.eventsSent} event(s) in ${counters.requests} request(s). Find pipeline "${PIPELINE_NAME}" under CI Visibility → Pipelines.`,
  );
  return 0;
}

const code = await main().catch((err: unknown) => {
  console.error('demo failed:', err);
  return 1;
});
process.exitCode = code;
// Everything is flushed and closed: the process should now exit by itself. If something still holds
// the event loop (a leaked timer or socket), say so instead of hanging.
setTimeout(() => {
  console.error('demo: the process did not exit within 3 s after shutdown; something keeps the event loop alive');
  process.exit(code || 1);
}, 3000).unref();
