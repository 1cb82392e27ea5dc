// HEAD's commit read from the repository's files (src/detect/git-files.ts) against what git itself
// says (`git log -1` with the detection's format) on real repositories: loose and packed objects
// and refs, tags light and annotated, detached HEADs, merge commits, signed-looking headers, odd
// offsets and dates, random names and messages. Where the reader declines (a worktree, a variable
// pointing git elsewhere, replaced objects, two tags at HEAD, a non-UTF-8 commit, an unborn
// branch), detection still gives git's answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, constants, existsSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { headCommitFromFiles, parsePackedRefs, type HeadCommit } from '../src/detect/git-files.js';
import { clearGitCache, detectGit, LOG_FORMAT, originFromConfigFile, parseLog } from '../src/detect/git.js';
import { makeGitRepo, type GitRepo } from './support/git-repo.js';

/** What the reader and detection see: no GIT_* variable of the test's own. */
const READ_ENV = { PATH: process.env.PATH };

const makeRepo = (t: { after(fn: () => void): void }): GitRepo => makeGitRepo(t, 'git-files-');

/** What git says, through the same parsing detection applies to it. */
function fromGit(dir: string): HeadCommit | undefined {
  let out: string;
  try {
    out = execFileSync('git', ['log', '-1', '--no-color', `--format=${LOG_FORMAT}`], { cwd: dir, env: { ...READ_ENV, HOME: dir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
  return parseLog(out);
}

/**
 * As detection uses it (detect/git.ts): values trimmed, the message without trailing whitespace
 * (git's output ends each commit with a newline of its own).
 */
function asUsed(c: HeadCommit): HeadCommit {
  const out = { ...c } as Record<string, string>;
  for (const k of Object.keys(out)) out[k] = k === 'message' ? out[k]!.replace(/\s+$/, '') : out[k]!.trim();
  return out as unknown as HeadCommit;
}

/** The reader must give exactly git's answer here (the plain case). */
async function assertSame(dir: string, what: string): Promise<HeadCommit> {
  const files = await headCommitFromFiles(dir, READ_ENV);
  const git = fromGit(dir);
  assert.ok(git, `${what}: git gives a commit`);
  assert.ok(files, `${what}: the reader reads it (the plain case)`);
  assert.deepEqual(asUsed(files), asUsed(git), what);
  return asUsed(files);
}

/** The reader declines, and detection still gives git's answer. */
async function assertDeclined(dir: string, what: string, env: Record<string, string | undefined> = READ_ENV): Promise<void> {
  assert.equal(await headCommitFromFiles(dir, env), undefined, `${what}: left to git`);
  clearGitCache();
  const detected = await detectGit(dir, { ...env, HOME: dir }, 30_000);
  const git = fromGit(dir);
  if (git) assert.equal(detected.sha, git.sha, `${what}: detection asks git`);
  else assert.deepEqual(detected, {}, `${what}: git says there is nothing`);
}

test('git files: a loose commit on a branch; then packed objects and refs (git gc); a merge commit', async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'First\n\nBody line — ünïcödé 🚀\n\n  indented\ttab');
  r.git('checkout', '-q', '-b', 'feature/x/y');
  r.gitEnv({ GIT_AUTHOR_DATE: '2024-06-01T00:00:00-05:30' }, 'commit', '-q', '--allow-empty', '-m', 'Second');
  const loose = await assertSame(r.dir, 'loose objects and refs');
  assert.equal(loose.branch, 'feature/x/y');
  assert.equal(loose.author_time, '2024-06-01T00:00:00-05:30');
  r.git('gc', '-q', '--prune=now');
  assert.equal(existsSync(join(r.dir, '.git', 'refs', 'heads', 'feature', 'x', 'y')), false, 'refs are packed');
  assert.equal(readdirSync(join(r.dir, '.git', 'objects')).filter((d) => /^[0-9a-f]{2}$/.test(d)).length, 0, 'objects are packed');
  await assertSame(r.dir, 'packed objects and refs');
  // A merge commit: two parents.
  r.git('checkout', '-q', 'trunk');
  r.git('commit', '-q', '--allow-empty', '-m', 'On trunk');
  r.git('merge', '-q', '--no-ff', '-m', 'Merge feature', 'feature/x/y');
  await assertSame(r.dir, 'a merge commit');
  r.git('repack', '-q', '-a', '-d');
  await assertSame(r.dir, 'a merge commit, packed');
});

test('git files: tags at HEAD, light and annotated, loose and packed; a detached HEAD names no branch', async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'one');
  r.git('tag', '-a', 'old', '-m', 'an annotated tag elsewhere');
  r.git('commit', '-q', '--allow-empty', '-m', 'two');
  assert.equal((await assertSame(r.dir, 'tags elsewhere')).tag, undefined);
  r.git('tag', 'v1.0.0');
  assert.equal((await assertSame(r.dir, 'a lightweight tag')).tag, 'v1.0.0');
  r.git('tag', '-d', 'v1.0.0');
  r.git('tag', '-a', 'release/2', '-m', 'annotated');
  const annotated = await assertSame(r.dir, 'a loose annotated tag');
  // Both, as git's %D says them; detection names the tag (a tag build is about the tag).
  assert.deepEqual([annotated.tag, annotated.branch], ['release/2', 'trunk']);
  r.git('pack-refs', '--all');
  await assertSame(r.dir, 'a packed (peeled) annotated tag');
  r.git('checkout', '-q', '--detach');
  const detached = await assertSame(r.dir, 'a detached HEAD on a tag');
  assert.equal(detached.branch, undefined);
  r.git('tag', '-d', 'release/2');
  assert.equal((await assertSame(r.dir, 'a detached HEAD')).branch, undefined);
  // A packed-refs file that does not say its tags are peeled: tag objects are read to know.
  r.git('tag', '-a', 'v3', '-m', 'three');
  r.git('pack-refs', '--all');
  const packedRefs = join(r.dir, '.git', 'packed-refs');
  const text = execFileSync('cat', [packedRefs], { encoding: 'utf8' });
  writeFileSync(packedRefs, text.replace(/^# pack-refs with:.*\n/, '').replace(/^\^.*\n/gm, ''));
  assert.equal(parsePackedRefs(execFileSync('cat', [packedRefs], { encoding: 'utf8' })).tagsPeeled, false);
  assert.equal((await assertSame(r.dir, 'unpeeled packed refs')).tag, 'v3');
});

test('git files: headers git writes around the identities (gpgsig, mergetag, encoding), dates past 2038, an empty message', async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'base');
  const tree = r.git('rev-parse', 'HEAD^{tree}').trim();
  const parent = r.git('rev-parse', 'HEAD').trim();
  const put = (body: string): string => {
    const sha = execFileSync('git', ['hash-object', '-t', 'commit', '-w', '--stdin'], { cwd: r.dir, input: body, encoding: 'utf8' }).trim();
    r.git('update-ref', 'refs/heads/trunk', sha);
    return sha;
  };
  const sig = ' -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n =abcd\n -----END PGP SIGNATURE-----';
  put(
    `tree ${tree}\nparent ${parent}\nauthor Zoë Q. Public <zoe@example.com> 4102444800 +1400\ncommitter C <c@example.com> 1700000000 -0000\n` +
      `mergetag object ${parent}\n type commit\n tag x\n tagger T <t@example.com> 1700000000 +0000\n \n tag message\n` +
      `gpgsig${sig}\nencoding UTF-8\n\nSigned subject\n\nand body\n`,
  );
  const signed = await assertSame(r.dir, 'gpgsig, mergetag and encoding UTF-8 headers');
  assert.equal(signed.author_time, '2100-01-01T14:00:00+14:00');
  put(`tree ${tree}\nparent ${parent}\nauthor A <a@example.com> 1700000000 +0000\ncommitter C <c@example.com> 1700000000 +0000\n\n`);
  assert.equal((await assertSame(r.dir, 'an empty message')).message, '');
  put(`tree ${tree}\nauthor A <a@example.com> 1700000000 +0100\ncommitter C <c@example.com> 1700000000 +0100\nencoding ISO-8859-1\n\nCaf\xe9\n`);
  await assertDeclined(r.dir, 'a commit in ISO-8859-1 (git re-encodes it)');
});

test('git files: what the reader leaves to git (worktree, GIT_DIR, replace refs, grafts, two tags, unborn branch) still detects as git says', async (t) => {
  const r = makeRepo(t);
  await assertDeclined(r.dir, 'an unborn branch');
  r.git('commit', '-q', '--allow-empty', '-m', 'one');
  const first = r.git('rev-parse', 'HEAD').trim();
  r.git('commit', '-q', '--allow-empty', '-m', 'two');
  await assertSame(r.dir, 'plain');
  await assertDeclined(r.dir, 'GIT_DIR set', { ...READ_ENV, GIT_DIR: join(r.dir, '.git') });
  r.git('tag', 'a');
  r.git('tag', 'b');
  await assertDeclined(r.dir, 'two tags at HEAD');
  r.git('tag', '-d', 'a', 'b');
  r.git('replace', 'HEAD', first);
  await assertDeclined(r.dir, 'a replace ref');
  r.git('replace', '-d', 'HEAD');
  await assertSame(r.dir, 'plain again');
  writeFileSync(join(r.dir, '.git', 'info', 'grafts'), `${first}\n`);
  await assertDeclined(r.dir, 'grafts');
  unlinkSync(join(r.dir, '.git', 'info', 'grafts'));
  const wt = join(r.dir, 'wt');
  r.git('worktree', 'add', '-q', '-b', 'side', wt);
  await assertDeclined(wt, 'a worktree (.git is a file)');
  // Extensions change the formats (reftable, SHA-256): left to git.
  r.git('config', 'extensions.worktreeConfig', 'true');
  await assertDeclined(r.dir, 'a repository with extensions');
});

test('git files: random identities, dates, offsets and messages read as git reads them', async (t) => {
  const r = makeRepo(t);
  const text = fc.string({ unit: fc.constantFrom('a', 'Z', ' ', 'é', '—', '🚀', '"', '\\', '.', '-', '\u2028', '\t'), minLength: 1, maxLength: 12 });
  // git refuses a name made only of punctuation it strips ("crud").
  const name = text.filter((s) => /[aZé🚀]/u.test(s));
  const offsets = ['+0000', '-0000', '+0100', '-0530', '+0545', '+1400', '-1200', '+0930'];
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      name,
      fc.stringMatching(/^[a-z0-9._+-]{1,12}@[a-z0-9.-]{1,12}$/),
      fc.integer({ min: 86_400, max: 4_102_444_800 }),
      fc.constantFrom(...offsets),
      fc.array(text, { maxLength: 5 }),
      async (who, email, seconds, offset, lines) => {
        n++;
        const message = `Subject ${n}\n\n${lines.join('\n')}`;
        r.gitEnv(
          { GIT_AUTHOR_NAME: who, GIT_AUTHOR_EMAIL: email, GIT_AUTHOR_DATE: `@${seconds} ${offset}`, GIT_COMMITTER_DATE: `@${seconds + 7} ${offset}` },
          'commit', '-q', '--allow-empty', '--cleanup=verbatim', '-m', message,
        );
        await assertSame(r.dir, `commit ${n}`);
      },
    ),
    { numRuns: 25 },
  );
});

test('git files: detection in a plain repository starts no git (found without git on PATH)', async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'one');
  r.git('remote', 'add', 'origin', 'https://github.com/acme/thing.git');
  clearGitCache();
  const g = await detectGit(r.dir, { PATH: join(r.dir, 'no-bin') }, 30_000);
  assert.equal(g.sha, r.git('rev-parse', 'HEAD').trim());
  assert.deepEqual([g.branch, g.author_email, g.repository_url], ['trunk', 'ada@example.com', 'https://github.com/acme/thing.git']);
});

test('git files: damaged files (HEAD, a loose object, a pack index claiming billions of objects) are left to git, never thrown', async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'one');
  const sha = r.git('rev-parse', 'HEAD').trim();
  const object = join(r.dir, '.git', 'objects', sha.slice(0, 2), sha.slice(2));
  const good = readFileSync(object);
  chmodSync(object, 0o644);
  writeFileSync(object, good.subarray(0, good.length - 4));
  assert.equal(await headCommitFromFiles(r.dir, READ_ENV), undefined, 'a truncated loose object');
  writeFileSync(object, good);
  await assertSame(r.dir, 'restored');
  r.git('gc', '-q', '--prune=now');
  await assertSame(r.dir, 'packed');
  const pack = join(r.dir, '.git', 'objects', 'pack');
  const idx = join(pack, readdirSync(pack).find((f) => f.endsWith('.idx'))!);
  const bytes = readFileSync(idx);
  chmodSync(idx, 0o644);
  // Every fanout entry from the commit's first byte on claims 2^32 - 1 objects.
  const damaged = Buffer.from(bytes);
  for (let b = parseInt(sha.slice(0, 2), 16); b < 256; b++) damaged.writeUInt32BE(0xffffffff, 8 + b * 4);
  writeFileSync(idx, damaged);
  assert.equal(await headCommitFromFiles(r.dir, READ_ENV), undefined, 'a damaged pack index');
  writeFileSync(idx, bytes);
  writeFileSync(join(r.dir, '.git', 'HEAD'), 'garbage\n');
  assert.equal(await headCommitFromFiles(r.dir, READ_ENV), undefined, 'a HEAD git would not read either');
  // A ref name git refuses, pointing at a file outside .git that looks like a ref.
  writeFileSync(join(r.dir, 'outside'), `${sha}\n`);
  writeFileSync(join(r.dir, '.git', 'HEAD'), 'ref: refs/heads/../../../outside\n');
  assert.equal(await headCommitFromFiles(r.dir, READ_ENV), undefined, 'a ref name with ..');
});

/** Settles within `ms`, or fails the test (a read that blocks never settles). */
function promptly<T>(p: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still reading after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A FIFO at `path`; after the test, a writer opens and closes it, so that a reader blocked on it (the bug) ends. */
function makeFifo(t: { after(fn: () => void): void }, path: string): void {
  execFileSync('mkfifo', [path]);
  t.after(() => {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: nobody is reading it, as it should be
    }
  });
}

test('git files: a FIFO, a device or a directory where a file should be is declined at once, never read (a read would block or never end)', { skip: process.platform === 'win32' }, async (t) => {
  const r = makeRepo(t);
  r.git('commit', '-q', '--allow-empty', '-m', 'one');
  r.git('remote', 'add', 'origin', 'https://github.com/acme/thing.git');
  const sha = r.git('rev-parse', 'HEAD').trim();
  const git = join(r.dir, '.git');
  // `path` replaced by what `make` puts there while the reader (and `also`) must decline it at once.
  const swap = async (path: string, make: (p: string) => void, what: string, also?: () => Promise<void>): Promise<void> => {
    renameSync(path, `${path}.real`);
    make(path);
    assert.equal(await promptly(headCommitFromFiles(r.dir, READ_ENV), what), undefined, what);
    await also?.();
    unlinkSync(path);
    renameSync(`${path}.real`, path);
  };
  await swap(join(git, 'HEAD'), (p) => makeFifo(t, p), 'HEAD a FIFO');
  await swap(join(git, 'refs', 'heads', 'trunk'), (p) => symlinkSync('/dev/zero', p), 'the branch a link to /dev/zero');
  await swap(join(git, 'objects', sha.slice(0, 2), sha.slice(2)), (p) => makeFifo(t, p), 'the commit object a FIFO');
  await assertSame(r.dir, 'all restored');
  r.git('gc', '-q', '--prune=now');
  const pack = join(git, 'objects', 'pack');
  const name = readdirSync(pack).find((f) => f.endsWith('.idx'))!.slice(0, -4);
  await swap(join(pack, `${name}.idx`), (p) => makeFifo(t, p), 'the pack index a FIFO');
  await swap(join(pack, `${name}.pack`), (p) => symlinkSync('/dev/zero', p), 'the pack a link to /dev/zero');
  await swap(join(git, 'packed-refs'), (p) => symlinkSync(git, p), 'packed-refs a link to a directory');
  await assertSame(r.dir, 'packed, restored');
  // The config files detection reads for the origin's URL: declined too (git is then asked).
  const env = { PATH: process.env.PATH, HOME: r.dir, GIT_CONFIG_NOSYSTEM: '1' };
  assert.equal(await promptly(originFromConfigFile(r.dir, env), 'plain'), 'https://github.com/acme/thing.git');
  await swap(join(git, 'config'), (p) => makeFifo(t, p), 'config a FIFO', async () => {
    assert.equal(await promptly(originFromConfigFile(r.dir, env), 'config a FIFO'), undefined);
  });
  r.git('remote', 'remove', 'origin');
  makeFifo(t, join(r.dir, '.gitconfig'));
  assert.equal(await promptly(originFromConfigFile(r.dir, env), 'the global config a FIFO'), undefined, 'it may name an origin: git is asked');
});
