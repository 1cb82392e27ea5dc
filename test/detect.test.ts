// CI and git detection: each provider's fixture environment (its real variable names and value
// formats) → detected values; a real temporary git repository → git values; git absent or no
// repository → nothing, no throw; and end to end through a real exporter and intake: detected
// values fill what attributes leave out, and attributes always win.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  clearGitCache,
  detectCiEnvironment,
  detectEnvironment,
  detectGit,
  mergeDetectedGit,
  sendableGit,
  type DetectedEnvironment,
} from '../src/detect/index.js';
import { refToGit } from '../src/detect/ci.js';
import { originFromConfigFile, parseRefs } from '../src/detect/git.js';
import { makeGitRepo } from './support/git-repo.js';
import { assertAllValid, ci, resourceNamed, runTree, SHA, startHarness } from './support/trace-helpers.js';

// The exporter reads the process's environment: the machine running the tests must not change
// what they see (the suite may itself run in one of these CI systems).
const CI_VARS = /^(CI|GITHUB_.*|RUNNER_.*|GITLAB_CI|CI_.*|JENKINS_URL|BUILD_.*|JOB_NAME|NODE_NAME|WORKSPACE|GIT_.*|CIRCLECI|CIRCLE_.*|BUILDKITE|BUILDKITE_.*|TF_BUILD|SYSTEM_.*|AGENT_.*|BITBUCKET_.*|DD_API_KEY|DD_SITE|DD_ENV)$/;
for (const k of Object.keys(process.env)) if (CI_VARS.test(k)) delete process.env[k];

interface Fixture {
  env: Record<string, string>;
  expected: DetectedEnvironment;
}
const FIXTURES = new URL('./fixtures/ci-env/', import.meta.url);
const fixture = (name: string): Fixture => JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as Fixture;

for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) {
  const name = file.slice(0, -'.json'.length);
  test(`detection: ${name} environment → pipeline, job, node and git values`, () => {
    const { env, expected } = fixture(name);
    assert.deepEqual(detectCiEnvironment(env), expected);
  });
}

test('detection: the seven providers are covered by fixtures', () => {
  const providers = readdirSync(FIXTURES).map((f) => fixture(f.replace(/\.json$/, '')).expected.provider);
  assert.deepEqual(providers.sort(), ['azurepipelines', 'bitbucket', 'buildkite', 'circleci', 'github', 'gitlab', 'jenkins']);
});

test('detection: outside CI nothing is detected from the environment', () => {
  assert.deepEqual(detectCiEnvironment({ PATH: '/usr/bin', HOME: '/root' }), { pipeline: {}, job: {}, node: {} });
  // JENKINS_URL alone (leaked into a tool run on an agent) is not a Jenkins build.
  assert.equal(detectCiEnvironment({ JENKINS_URL: 'https://jenkins.example.com/' }).provider, undefined);
});

test('detection: tags, pushes and first attempts in each provider’s formats', () => {
  const gh = fixture('github').env;
  const push = detectCiEnvironment({ ...gh, GITHUB_HEAD_REF: '', GITHUB_REF: 'refs/heads/main', GITHUB_RUN_ATTEMPT: '1' });
  assert.deepEqual([push.git?.branch, push.git?.tag], ['main', undefined]);
  assert.equal(push.pipeline.url, 'https://github.com/octo-org/octo-repo/actions/runs/7312345678');
  const ghTag = detectCiEnvironment({ ...gh, GITHUB_HEAD_REF: '', GITHUB_REF: 'refs/tags/v2.1.0' });
  assert.deepEqual([ghTag.git?.branch, ghTag.git?.tag], [undefined, 'v2.1.0']);
  // GitHub Enterprise Server: the server URL is the host's.
  assert.equal(detectCiEnvironment({ ...gh, GITHUB_SERVER_URL: 'https://ghe.example.com/' }).git?.repository_url, 'https://ghe.example.com/octo-org/octo-repo.git');

  const gl = fixture('gitlab').env;
  const glTag = detectCiEnvironment({ ...gl, CI_COMMIT_BRANCH: '', CI_COMMIT_REF_NAME: 'v3.0.0', CI_COMMIT_TAG: 'v3.0.0' });
  assert.deepEqual([glTag.git?.branch, glTag.git?.tag], [undefined, 'v3.0.0']);
  const glMr = detectCiEnvironment({ ...gl, CI_COMMIT_BRANCH: '', CI_MERGE_REQUEST_SOURCE_BRANCH_NAME: 'feature/x', CI_COMMIT_REF_NAME: 'feature/x' });
  assert.equal(glMr.git?.branch, 'feature/x');

  const az = fixture('azurepipelines').env;
  const azTag = detectCiEnvironment({ ...az, BUILD_SOURCEBRANCH: 'refs/tags/release-7' });
  assert.deepEqual([azTag.git?.branch, azTag.git?.tag], [undefined, 'release-7']);
  const azPr = detectCiEnvironment({
    ...az,
    BUILD_SOURCEBRANCH: 'refs/pull/17/merge',
    SYSTEM_PULLREQUEST_SOURCEBRANCH: 'refs/heads/topic',
    SYSTEM_PULLREQUEST_SOURCECOMMITID: SHA,
  });
  assert.deepEqual([azPr.git?.branch, azPr.git?.sha], ['topic', SHA]);

  const jk = fixture('jenkins').env;
  assert.equal(detectCiEnvironment({ ...jk, GIT_BRANCH: 'origin/tags/v9' }).git?.tag, 'v9');
  // A job that is not multibranch keeps its whole name.
  assert.equal(detectCiEnvironment({ ...jk, JOB_NAME: 'nightly', BRANCH_NAME: '' }).pipeline.name, 'nightly');

  const bb = fixture('bitbucket').env;
  const bbTag = detectCiEnvironment({ ...bb, BITBUCKET_BRANCH: '', BITBUCKET_TAG: 'v5' });
  assert.deepEqual([bbTag.git?.branch, bbTag.git?.tag], [undefined, 'v5']);

  assert.deepEqual(refToGit('refs/pull/3/merge'), {});
  assert.deepEqual(refToGit('origin/feature/a'), { branch: 'feature/a' });
});

test('detection: credentials in detected URLs are removed (GitLab job token, Jenkins, Azure user)', () => {
  assert.equal(detectCiEnvironment(fixture('gitlab').env).git?.repository_url, 'https://gitlab.example.com/gitlab-org/gitlab-foss.git');
  assert.equal(detectCiEnvironment(fixture('jenkins').env).git?.repository_url, 'https://git.example.com/shop.git');
  assert.equal(detectCiEnvironment(fixture('azurepipelines').env).git?.repository_url, 'https://dev.azure.com/fabrikam/web/_git/web');
  // A GitHub server URL with credentials (GHES behind a proxy) does not leak into the URLs either.
  const gh = detectCiEnvironment({ ...fixture('github').env, GITHUB_SERVER_URL: 'https://bot:tok123@ghe.example.com' });
  assert.ok(!JSON.stringify(gh).includes('tok123'), JSON.stringify(gh));
});

test('detection: the provider’s git is layered over the local repository’s, commit details only for the same commit', () => {
  const local = { sha: SHA, branch: 'local', author_email: 'a@example.com', author_name: 'A', message: 'm', repository_url: 'git@github.com:o/r.git' };
  const same = mergeDetectedGit(local, { sha: SHA, tag: 'v1', repository_url: 'https://github.com/o/r.git' });
  assert.deepEqual(same, { sha: SHA, tag: 'v1', author_email: 'a@example.com', author_name: 'A', message: 'm', repository_url: 'https://github.com/o/r.git' });
  const other = 'f'.repeat(40);
  const differs = mergeDetectedGit(local, { sha: other });
  assert.deepEqual(differs, { sha: other, repository_url: 'git@github.com:o/r.git' });
  assert.equal(sendableGit(same), true);
  assert.equal(sendableGit(differs), false, 'no author email: Datadog would refuse the git object');
});

/** A real repository: one commit with set author, committer and dates, a branch, a tag, a remote. */
function makeRepo(t: { after(fn: () => void): void }): string {
  const { dir, git } = makeGitRepo(t, 'detect-git-');
  git('commit', '-q', '--allow-empty', '-m', 'Add the thing\n\nWith a body.');
  git('checkout', '-q', '-b', 'feature/detect');
  git('remote', 'add', 'origin', 'https://x-access-token:ghs_s3cretT0ken@github.com/acme/thing.git');
  return dir;
}

/** Makes HEAD's commit one the files reader leaves to git (two tags at HEAD), so that git runs. */
function forceGitRun(dir: string): void {
  execFileSync('git', ['tag', 'two-tags-a'], { cwd: dir });
  execFileSync('git', ['tag', 'two-tags-b'], { cwd: dir });
}

test('detection: an origin that is a local path (a clone of a clone) names no repository; ssh and https remotes do', async (t) => {
  for (const [origin, expected] of [
    ['/srv/mirror/app.git', undefined],
    ['../app', undefined],
    ['file:///srv/mirror/app.git', undefined],
    ['git@github.com:acme/app.git', 'git@github.com:acme/app.git'],
    ['ssh://git@github.com/acme/app.git', 'ssh://git@github.com/acme/app.git'],
    ['https://github.com/acme/app.git', 'https://github.com/acme/app.git'],
  ] as const) {
    const dir = makeRepo(t);
    execFileSync('git', ['remote', 'set-url', 'origin', origin], { cwd: dir });
    const raw = await detectGit(dir, process.env, 30_000);
    assert.equal(raw.repository_url, expected, origin);
  }
});

test('detection: the origin URL read from .git/config is what `git config --get remote.origin.url` says; git is asked when the file cannot say plainly', async (t) => {
  const dir = makeRepo(t);
  execFileSync('git', ['remote', 'remove', 'origin'], { cwd: dir });
  const base = readFileSync(join(dir, '.git', 'config'), 'utf8');
  const env = { PATH: process.env.PATH, HOME: dir, GIT_CONFIG_NOSYSTEM: '1' };
  const gitSays = (): string | undefined => {
    try {
      return execFileSync('git', ['config', '--get', 'remote.origin.url'], { cwd: dir, env, encoding: 'utf8' }).trim();
    } catch {
      return undefined; // no such key
    }
  };
  // [config text, read from the file?]
  const cases: Array<[string, boolean]> = [
    ['[remote "origin"]\n\turl = https://github.com/acme/a.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n', true],
    ['[Remote "origin"] ; a comment\n URL=git@github.com:acme/b.git\n', true],
    ['[remote "origin"]\n\turl = https://first.example/a.git\n\turl = https://second.example/b.git  \n[remote "upstream"]\n\turl = https://up.example/c.git\n', true],
    ['# comment\n[remote "origin"]\n\tpushurl = https://push.example/p.git\n\turl = https://h.example/with space.git\n', true],
    // Subsection names are case-sensitive: no origin (null, see below).
    ['[remote "Origin"]\n\turl = https://github.com/acme/case.git\n', false],
    ['[remote "origin"]\n\turl = https://github.com/acme/c.git # a comment\n', false],
    ['[remote "origin"]\n\turl = "https://github.com/acme/quoted.git"\n', false],
    ['[remote "origin"]\n\turl = https://github.com/acme/tab\there.git\n', false],
    ['[remote "origin"]\n\turl = https://github.com/acme/\\\n  continued.git\n', false],
    ['[remote.origin]\n\turl = https://github.com/acme/old-style.git\n', false],
    ['[remote "origin"]\n\turl = https://github.com/acme/d.git\n[include]\n\tpath = extra\n', false],
    ['[remote "origin"] url = https://github.com/acme/same-line.git\n', false],
    ['[core]\n\tbare = false\n', false],
  ];
  // No origin in the repository's file (these two cases): null, "none", since no global or system
  // file git reads here can name one (HOME is the repository, GIT_CONFIG_NOSYSTEM is set).
  const noOrigin = new Set([4, cases.length - 1]);
  for (const [i, [text, plain]] of cases.entries()) {
    writeFileSync(join(dir, '.git', 'config'), base + text);
    writeFileSync(join(dir, '.git', 'extra'), '[remote "origin"]\n\turl = https://github.com/acme/included.git\n');
    const fromFile = await originFromConfigFile(dir, env);
    if (noOrigin.has(i)) assert.equal(fromFile, null, `no origin anywhere: ${JSON.stringify(text)}`);
    else assert.equal(fromFile !== undefined, plain, `read from the file: ${JSON.stringify(text)}`);
    if (fromFile !== undefined) assert.equal(fromFile ?? undefined, gitSays(), text);
    clearGitCache();
    assert.equal((await detectGit(dir, env, 30_000)).repository_url, gitSays(), `detected: ${JSON.stringify(text)}`);
  }
  // No origin in the repository's file, but a global file that names one: git is asked, and says it.
  writeFileSync(join(dir, '.git', 'config'), base);
  writeFileSync(join(dir, '.gitconfig'), '[remote "origin"]\n\turl = https://github.com/acme/global.git\n');
  assert.equal(await originFromConfigFile(dir, env), undefined);
  assert.equal(await originFromConfigFile(dir, { ...env, GIT_CONFIG_GLOBAL: join(dir, 'none') }), null);
  assert.equal(await originFromConfigFile(dir, { PATH: env.PATH, GIT_CONFIG_NOSYSTEM: '1' }), undefined, 'no HOME: git is asked');
  clearGitCache();
  assert.equal((await detectGit(dir, env, 30_000)).repository_url, 'https://github.com/acme/global.git');
  rmSync(join(dir, '.gitconfig'));
  writeFileSync(join(dir, '.git', 'config'), base + cases[0]![0]);
  // Variables that point git at other config files, and a per-worktree config: git is asked.
  assert.equal(await originFromConfigFile(dir, { ...env, GIT_CONFIG_COUNT: '0' }), undefined);
  assert.equal(await originFromConfigFile(dir, { ...env, GIT_DIR: join(dir, '.git') }), undefined);
  writeFileSync(join(dir, '.git', 'config.worktree'), '');
  assert.equal(await originFromConfigFile(dir, env), undefined);
  rmSync(join(dir, '.git', 'config.worktree'));
  // A subdirectory of the repository (git finds .git above it): git is asked.
  mkdirSync(join(dir, 'sub'));
  assert.equal(await originFromConfigFile(join(dir, 'sub'), env), undefined);
  clearGitCache();
  assert.equal((await detectGit(join(dir, 'sub'), env, 30_000)).repository_url, 'https://github.com/acme/a.git');

  // The plain case starts no git at all (the commit is read from the files too: detect-git-files
  // test); an origin the file cannot say costs one run. A git on PATH that logs its arguments.
  const bin = mkdtempSync(join(tmpdir(), 'detect-loggit-'));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  const real = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  writeFileSync(join(bin, 'git'), `#!/bin/sh\necho "$1" >> '${bin}/log'\nexec '${real}' "$@"\n`, { mode: 0o755 });
  const runs = async (): Promise<string[]> => {
    rmSync(join(bin, 'log'), { force: true });
    clearGitCache();
    assert.equal((await detectGit(dir, { ...env, PATH: `${bin}:${process.env.PATH}` }, 30_000)).repository_url, 'https://github.com/acme/a.git');
    return readFileSync(join(bin, 'log'), { encoding: 'utf8', flag: 'a+' }).trim().split('\n').filter(Boolean).sort();
  };
  assert.deepEqual(await runs(), []);
  writeFileSync(join(dir, '.git', 'config'), `${base + cases[0]![0]}[include]\n\tpath = none\n`);
  assert.deepEqual(await runs(), ['config']);
  // Two tags at HEAD: which one git names is git's to say.
  forceGitRun(dir);
  assert.deepEqual(await runs(), ['config', 'log']);
});

test('detection: a local git repository → sha, branch, author, committer, times, message, scrubbed remote', async (t) => {
  const dir = makeRepo(t);
  const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  // A generous budget: this test is about the values, and the machine may be loaded.
  const raw = await detectGit(dir, process.env, 30_000);
  assert.equal(raw.repository_url, 'https://x-access-token:ghs_s3cretT0ken@github.com/acme/thing.git', 'detectGit reports what git says');
  const d = await detectEnvironment({ PATH: process.env.PATH }, { cwd: dir, gitTimeoutMs: 30_000 });
  assert.deepEqual(d.git, {
    sha,
    author_name: 'Ada Author',
    author_email: 'ada@example.com',
    author_time: '2024-03-01T10:00:00+01:00',
    committer_name: 'Carl Committer',
    committer_email: 'carl@example.com',
    commit_time: '2024-03-02T12:30:00+00:00',
    message: 'Add the thing\n\nWith a body.',
    branch: 'feature/detect',
    repository_url: 'https://github.com/acme/thing.git',
  });
  assert.equal(d.provider, undefined);
});

test('detection: a tag at HEAD is the ref; a detached HEAD names no branch', async (t) => {
  const dir = makeRepo(t);
  execFileSync('git', ['tag', 'v1.2.3'], { cwd: dir });
  execFileSync('git', ['checkout', '-q', '--detach'], { cwd: dir });
  clearGitCache();
  const g = await detectGit(dir, process.env, 30_000);
  assert.equal(g.tag, 'v1.2.3');
  assert.equal(g.branch, undefined);
  assert.deepEqual(parseRefs('HEAD -> main, tag: v1, origin/main'), { branch: 'main', tag: 'v1' });
  assert.deepEqual(parseRefs('HEAD, origin/main'), {});
});

test('detection: git absent or no repository → nothing, no throw, quickly', async (t) => {
  const dir = makeRepo(t);
  // Without git on PATH, a plain repository is still read from its files (detect-git-files test):
  // here, one that needs git.
  forceGitRun(dir);
  clearGitCache();
  assert.deepEqual(await detectGit(dir, { PATH: join(dir, 'no-bin') }), {}, 'PATH without git');
  const bare = mkdtempSync(join(tmpdir(), 'detect-nogit-'));
  t.after(() => rmSync(bare, { recursive: true, force: true }));
  // GIT_CEILING_DIRECTORIES: git must not find a repository above the temporary directory.
  assert.deepEqual(await detectGit(bare, { PATH: process.env.PATH, GIT_CEILING_DIRECTORIES: tmpdir() }), {}, 'not a repository');
  const d = await detectEnvironment({ PATH: join(dir, 'no-bin'), ...fixture('github').env }, { cwd: dir });
  assert.equal(d.pipeline.name, 'CI', 'the provider’s values still come through');
  assert.equal(d.git?.author_email, undefined);
  // A directory that does not exist: spawn fails; still nothing.
  assert.deepEqual(await detectGit(join(bare, 'gone'), { PATH: process.env.PATH }), {});
});

test('detection: a hung git is given up at the timeout', async (t) => {
  const dir = makeRepo(t);
  forceGitRun(dir);
  const bin = mkdtempSync(join(tmpdir(), 'detect-slowgit-'));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  execFileSync('sh', ['-c', `printf '#!/bin/sh\\nsleep 5\\n' > ${bin}/git && chmod +x ${bin}/git`]);
  const started = Date.now();
  assert.deepEqual(await detectGit(dir, { PATH: `${bin}:${process.env.PATH}` }, 200), {});
  assert.ok(Date.now() - started < 3000, 'not waiting for the hung git');
});

test('a short-lived host does not wait for git: detection never keeps the process alive', { timeout: 60_000 }, async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'detect-slowgit-'));
  t.after(() => rmSync(bin, { recursive: true, force: true }));
  execFileSync('sh', ['-c', `printf '#!/bin/sh\\nsleep 8\\n' > ${bin}/git && chmod +x ${bin}/git`]);
  const script = `
    import { DatadogCIPipelineExporter } from './src/index.js';
    new DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', logger: () => {} });
    console.log(Date.now());
  `;
  const { ended, exited, code } = await new Promise<{ ended: number; exited: number; code: number | null }>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      // GIT_DIR: the files reader leaves the repository to git, so the hung git is what runs.
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, GIT_DIR: new URL('../.git', import.meta.url).pathname },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (c) => resolve({ ended: Number(out.trim()), exited: Date.now(), code: c }));
  });
  assert.equal(code, 0);
  assert.ok(Number.isFinite(ended));
  // The hung git sleeps 8 s in a child shell (so even killing it at 1 s would leave its output
  // pipe open); the process leaves as soon as its own code is done.
  assert.ok(exited - ended < 4_000, `lingered ${exited - ended} ms after its code ended`);
});

test('end to end: detected CI values fill a pipeline, job and step; attributes always win', async (t) => {
  const env = fixture('gitlab').env;
  Object.assign(process.env, env);
  let h: Awaited<ReturnType<typeof startHarness>>;
  try {
    h = await startHarness(t, { exporter: { detectEnvironment: true } });
  } finally {
    for (const k of Object.keys(env)) delete process.env[k];
  }
  const { tracer } = h;
  runTree(tracer, {
    name: 'bare pipeline span',
    attributes: { 'ci.level': 'pipeline' },
    children: [
      {
        name: 'compile',
        attributes: { 'ci.level': 'job' },
        children: [{ name: 'make', attributes: { 'ci.level': 'step', 'ci.node.name': 'own-node' } }],
      },
    ],
  });
  runTree(tracer, { name: 'explicit', attributes: ci('pipeline', 'explicit', { 'ci.name': 'my pipeline', 'ci.pipeline_id': 'p-1' }) });
  // A job whose pipeline runs in another process: it is this CI job, and takes its name.
  runTree(tracer, {
    name: 'lonely job span',
    attributes: { 'ci.level': 'job', 'ci.pipeline_unique_id': '11111111-2222-3333-4444-555555555555', 'ci.pipeline_name': 'elsewhere' },
  });
  await h.flush();
  assertAllValid(h.intake);

  const p = resourceNamed(h.intake, 'gitlab-org/gitlab-foss');
  assert.equal(p.url, 'https://gitlab.example.com/gitlab-org/gitlab-foss/-/pipelines/1000512');
  assert.equal(p.pipeline_id, '1000512');
  assert.equal(p.node, undefined, 'node values go to jobs and steps');
  const job = resourceNamed(h.intake, 'compile');
  assert.equal(job.url, 'https://gitlab.example.com/gitlab-org/gitlab-foss/-/jobs/50021');
  assert.deepEqual(job.node, { name: 'shared-runner-3', workspace: '/builds/gitlab-org/gitlab-foss' });
  assert.equal(job.pipeline_name, 'gitlab-org/gitlab-foss', 'descendants link to the detected name');
  const step = resourceNamed(h.intake, 'make');
  assert.deepEqual(step.node, { name: 'own-node', workspace: '/builds/gitlab-org/gitlab-foss' });

  const explicit = resourceNamed(h.intake, 'my pipeline');
  assert.equal(explicit.url, 'https://ci.example.com/builds/explicit');
  assert.equal(explicit.pipeline_id, 'p-1');
  const lonely = resourceNamed(h.intake, 'rspec 1/2');
  assert.equal(lonely.pipeline_name, 'elsewhere');

  // The provider's git (its commit author included) goes on every event, without the job token.
  for (const e of h.intake.events) {
    const git = e.attributes.resource.git as Record<string, string>;
    assert.equal(git.sha, '1ecfd275763eff1d6b4844ea3168962458c9f27a');
    assert.equal(git.author_email, 'jane@example.com');
    assert.equal(git.repository_url, 'https://gitlab.example.com/gitlab-org/gitlab-foss.git');
  }
  const body = JSON.stringify(h.intake.requests.map((r) => r.body));
  assert.ok(!body.includes('glcbt-64_xyzSECRETjobtoken'));
});

test('end to end: resource ci.* attributes beat detection; detectEnvironment: false turns it off', async (t) => {
  Object.assign(process.env, fixture('github').env);
  let on: Awaited<ReturnType<typeof startHarness>>;
  let off: Awaited<ReturnType<typeof startHarness>>;
  try {
    on = await startHarness(t, { exporter: { detectEnvironment: true }, resource: { 'ci.url': 'https://resource.example.com/run' } });
    off = await startHarness(t, { exporter: { detectEnvironment: false } });
  } finally {
    for (const k of Object.keys(fixture('github').env)) delete process.env[k];
  }
  runTree(on.tracer, { name: 'p', attributes: { 'ci.level': 'pipeline' } });
  runTree(off.tracer, { name: 'q', attributes: { 'ci.level': 'pipeline', 'ci.url': 'https://ci.example.com/q' } });
  await Promise.all([on.flush(), off.flush()]);
  const p = resourceNamed(on.intake, 'CI');
  assert.equal(p.url, 'https://resource.example.com/run');
  assert.equal(p.pipeline_id, '7312345678');
  // GitHub's variables give no commit author: that git cannot be sent, so it is left out quietly.
  assert.equal(p.git, undefined);
  assert.deepEqual(on.lines.filter((l) => l.includes('git')), []);
  const q = resourceNamed(off.intake, 'q');
  assert.equal(q.pipeline_id, undefined);
  assert.equal(q.url, 'https://ci.example.com/q');
});

test('end to end: the local repository’s git goes on every event, below git attributes', async (t) => {
  const dir = makeRepo(t);
  const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  const before = process.cwd();
  process.chdir(dir);
  let h: Awaited<ReturnType<typeof startHarness>>;
  try {
    // Asked first with a generous budget (the machine may be loaded); the exporter, which asks
    // git at its construction, gets this same cached answer.
    const asked = detectGit(process.cwd(), process.env, 30_000);
    h = await startHarness(t, { exporter: { detectEnvironment: true } });
    await asked;
  } finally {
    process.chdir(before);
  }
  runTree(h.tracer, {
    name: 'p',
    attributes: ci('pipeline', 'p'),
    children: [
      { name: 'j', attributes: ci('job', 'j'), children: [{ name: 's', attributes: { 'ci.level': 'step' } }] },
      { name: 'k', attributes: ci('job', 'k', { 'ci.git.branch': 'override' }) },
    ],
  });
  // A pipeline of another commit, named by attributes: the local commit's author and message are not its.
  runTree(h.tracer, {
    name: 'other',
    attributes: ci('pipeline', 'other', { 'ci.git.repository_url': 'https://github.com/acme/other.git', 'ci.git.sha': 'b'.repeat(40), 'ci.git.branch': 'main', 'ci.git.author_email': 'bob@example.com' }),
  });
  await h.flush();
  assertAllValid(h.intake);
  for (const name of ['p', 'j', 's']) {
    const git = resourceNamed(h.intake, name).git as Record<string, string> | undefined;
    assert.equal(git?.sha, sha, name);
    assert.equal(git?.branch, 'feature/detect', name);
    assert.equal(git?.repository_url, 'https://github.com/acme/thing.git', name);
    assert.equal(git?.author_email, 'ada@example.com', name);
  }
  const k = resourceNamed(h.intake, 'k').git as Record<string, string>;
  assert.equal(k.branch, 'override');
  assert.equal(k.sha, sha);
  assert.deepEqual(resourceNamed(h.intake, 'other').git, {
    repository_url: 'https://github.com/acme/other.git',
    sha: 'b'.repeat(40),
    branch: 'main',
    author_email: 'bob@example.com',
  });
  assert.ok(!JSON.stringify(h.intake.requests.map((r) => r.body)).includes('ghs_s3cretT0ken'));
});
