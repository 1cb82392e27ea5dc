// The local repository's commit: once per process and directory, bounded in time, never fatal.
// In the plain case it is read from the repository's files (git-files.ts, originFromConfigFile),
// with no process started. Otherwise two short `git` runs at once (the commit with its refs, the
// origin URL), asynchronous: spawning a process takes 2–40 ms depending on the machine's load,
// too long to block the host's event loop for. The runs are unref'd (a short-lived host does not
// wait for them) and killed at GIT_TIMEOUT_MS (a hung git on a network filesystem or behind a lock).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { GitInfo } from '../mapping/transform.js';
import { headCommitFromFiles, type HeadCommit } from './git-files.js';
import { readRegularText, statPath } from './regular-file.js';

/** The whole budget of one detection, all git runs together. */
export const GIT_TIMEOUT_MS = 1000;

type Env = Record<string, string | undefined>;

const SEP = '\x1f';
// %H sha, author name/email/time, committer name/email/time (strict ISO 8601), %D the refs
// pointing at HEAD ("HEAD -> main, tag: v1.0, origin/main"), %B the raw message (last: it may
// hold anything but NUL).
export const LOG_FORMAT = ['%H', '%an', '%ae', '%aI', '%cn', '%ce', '%cI', '%D', '%B'].join('%x1f');

/** A git detection under way or done; `hold()` makes its runs keep the process alive. */
interface Detection {
  promise: Promise<GitInfo>;
  held: boolean;
  /** The git runs under way (two at once). */
  children: ChildProcess[];
}

const cache = new Map<string, Detection>();

/**
 * What `git` says about HEAD in `cwd`: sha, branch or tag, origin URL (not scrubbed: see
 * detect/index.ts), author and committer, message. `{}` when git is missing, `cwd` is not a
 * repository, or git takes too long. Never rejects. Cached per directory for the process's life.
 * `background`: the runs do not keep the process alive (the exporter's use: a short-lived host
 * does not wait for them); an awaited call (the default) does.
 */
export function detectGit(cwd: string = process.cwd(), env: Env = process.env, timeoutMs = GIT_TIMEOUT_MS, background = false): Promise<GitInfo> {
  const key = `${cwd}\0${env.PATH ?? ''}`;
  let d = cache.get(key);
  if (!d) {
    const fresh: Detection = { promise: Promise.resolve({}), held: !background, children: [] };
    fresh.promise = readGit(cwd, env, timeoutMs, fresh).catch(() => ({}));
    cache.set(key, fresh);
    d = fresh;
  } else if (!background && !d.held) {
    d.held = true;
    for (const child of d.children) hold(child);
  }
  return d.promise;
}

/** Forgets what detectGit() learned (tests). */
export function clearGitCache(): void {
  cache.clear();
}

function hold(child: ChildProcess): void {
  child.ref();
  (child.stdout as unknown as { ref?: () => void } | null | undefined)?.ref?.();
}

async function readGit(cwd: string, env: Env, timeoutMs: number, d: Detection): Promise<GitInfo> {
  const deadline = Date.now() + timeoutMs;
  // In the background, the runs start on the event loop's next turn: starting a process blocks
  // its host until the process has started (5-20 ms), and whatever the host does right after
  // asking (`run` starting the build's command) should not wait for that.
  if (!d.held) await new Promise<void>((r) => setImmediate(r));
  // HEAD's commit and the origin's URL come from the repository's files when they say exactly
  // what git would (detect/git-files.ts and originFromConfigFile below), else from git, the two
  // at the same time: each git run costs its host 5-20 ms of waiting for the process to start
  // (more on a loaded machine) and a slower exit afterwards, on the path of a short-lived `run`.
  // The origin is used only when the commit is.
  const [commit, originOut] = await Promise.all([
    withinDeadline(headCommitFromFiles(cwd, env), deadline).then(async (c) => c ?? parseLog(await run(cwd, env, deadline, ['log', '-1', '--no-color', `--format=${LOG_FORMAT}`], d))),
    withinDeadline(originFromConfigFile(cwd, env), deadline).then((url) =>
      url === undefined ? run(cwd, env, deadline, ['config', '--get', 'remote.origin.url'], d) : (url ?? undefined),
    ),
  ]);
  if (commit === undefined) return {};
  const git: GitInfo = { sha: commit.sha };
  const put = (k: string, value: string | undefined): void => {
    if (value !== undefined && value.trim() !== '') git[k] = value.trim();
  };
  put('author_name', commit.author_name);
  put('author_email', commit.author_email);
  put('author_time', commit.author_time);
  put('committer_name', commit.committer_name);
  put('committer_email', commit.committer_email);
  put('commit_time', commit.commit_time);
  const message = commit.message.replace(/\s+$/, '');
  if (message !== '') git.message = message;
  // A tag build is about the tag; a branch is only named when HEAD is on it (not detached).
  if (commit.tag !== undefined) git.tag = commit.tag;
  else if (commit.branch !== undefined) git.branch = commit.branch;
  // Only a remote's address names the repository for Datadog: an origin that is a local path (a
  // clone of a clone, as CI systems and tests make) says nothing outside this machine.
  const origin = originOut?.trim();
  if (origin !== undefined && (/^[a-z][a-z0-9+.-]*:\/\//i.test(origin) ? !/^file:/i.test(origin) : /^[^\s/@]+@[^\s/:]+:/.test(origin))) put('repository_url', origin);
  return git;
}

/** `git log -1 --format=FORMAT`'s output → HEAD's commit; undefined when git gave none. */
export function parseLog(log: string | undefined): HeadCommit | undefined {
  if (log === undefined) return undefined;
  const parts = log.split(SEP);
  if (parts.length < 9 || !/^[0-9a-f]{40}$/.test(parts[0]!)) return undefined;
  const [sha, an, ae, at, cn, ce, ct, refs] = parts as [string, string, string, string, string, string, string, string];
  const { branch, tag } = parseRefs(refs);
  return {
    sha,
    author_name: an,
    author_email: ae,
    author_time: at,
    committer_name: cn,
    committer_email: ce,
    commit_time: ct,
    message: parts.slice(8).join(SEP),
    ...(branch !== undefined && { branch }),
    ...(tag !== undefined && { tag }),
  };
}

/** What a promise gives by `deadline` (epoch ms), or undefined (it never rejects). */
function withinDeadline<T>(p: Promise<T | undefined>, deadline: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

/** A config file larger than this is left to git (a repository's is a few hundred bytes). */
const MAX_CONFIG = 1 << 20;
/**
 * Variables under which `<cwd>/.git/config` may not have the last word: another repository, one
 * config file instead of all, values given as if on the command line (read after the repository's
 * file). GIT_CONFIG_GLOBAL, _SYSTEM and _NOSYSTEM only change files read before it.
 */
const CONFIG_ENV = /^GIT_(DIR|COMMON_DIR|CONFIG|CONFIG_PARAMETERS|CONFIG_COUNT|CONFIG_KEY_\w+|CONFIG_VALUE_\w+)$/;
const SECTION = /^\s*\[\s*([A-Za-z0-9-]+)(?:\s+"([^"\\]*)")?\s*\]\s*(?:[#;].*)?$/;
const URL_KEY = /^\s*url\s*(?:=|$)/i;
// git turns a tab inside a value into a space: inside, only plain spaces are taken as they are.
const URL_VALUE = /^\s*url\s*=\s*([^\s"#;](?:[^"#;\t\v\f]*[^\s"#;])?)\s*$/i;

/**
 * `remote.origin.url` as `git config --get` gives it, read from `<cwd>/.git/config` when that file
 * alone decides it, plainly written; null when no file git reads names one; otherwise undefined,
 * and git is asked. Only the plain case:
 * `cwd` is the top of a repository whose `.git` is a directory (not a worktree's or submodule's
 * file), no variable points git elsewhere, the file has no includes, no per-worktree config, no
 * backslash (escapes, continued lines), no old-style `[remote.origin]` section, and the URL is
 * unquoted with no comment after it. The last `url` of `[remote "origin"]` wins, as in git (the
 * repository's file is read after the global and system ones, so its value is the answer; when
 * it has none, a global or system file could name one: null only when none of them mentions an
 * origin or includes another file).
 */
export async function originFromConfigFile(cwd: string, env: Env): Promise<string | null | undefined> {
  for (const k of Object.keys(env)) if (CONFIG_ENV.test(k) && env[k] !== undefined) return undefined;
  const gitDir = join(cwd, '.git');
  const [dir, head, worktreeConfig, text] = await Promise.all([
    statPath(gitDir).catch(() => undefined),
    statPath(join(gitDir, 'HEAD')).catch(() => undefined),
    statPath(join(gitDir, 'config.worktree')).catch(() => undefined),
    readRegularText(join(gitDir, 'config'), MAX_CONFIG).catch(() => undefined),
  ]);
  if (!dir?.isDirectory() || !head?.isFile() || worktreeConfig !== undefined || text === undefined) return undefined;
  if (text.includes('\\') || text.includes('\r')) return undefined;
  let inOrigin = false;
  let url: string | undefined;
  for (const line of text.split('\n')) {
    if (/^\s*\[/.test(line)) {
      const m = SECTION.exec(line);
      if (!m) return undefined;
      const section = m[1]!.toLowerCase();
      if (section === 'include' || section === 'includeif') return undefined;
      inOrigin = section === 'remote' && m[2] === 'origin';
    } else if (inOrigin && URL_KEY.test(line)) {
      const m = URL_VALUE.exec(line);
      if (!m) return undefined;
      url = m[1];
    }
  }
  if (url !== undefined) return url;
  return (await othersMayNameOrigin(env)) ? undefined : null;
}

/** Asked of a config file git reads before the repository's: could it hold remote.origin.url? */
const MAY_NAME_ORIGIN = /origin|\[\s*include/i;

/**
 * Whether a global or system config file may name remote.origin.url (nobody's does, but a
 * repository without an origin — a local one, or the bench's — would otherwise cost a git run to
 * learn that). Conservative: a file that mentions "origin" or includes another, a HOME that is
 * not known, or a file that cannot be read all say it may.
 */
async function othersMayNameOrigin(env: Env): Promise<boolean> {
  const files: string[] = [];
  if (env.GIT_CONFIG_GLOBAL !== undefined) files.push(env.GIT_CONFIG_GLOBAL);
  else {
    if (!env.HOME) return true;
    files.push(join(env.XDG_CONFIG_HOME || join(env.HOME, '.config'), 'git', 'config'), join(env.HOME, '.gitconfig'));
  }
  // GIT_CONFIG_NOSYSTEM as git reads a boolean; anything unclear keeps the system files in.
  const noSystem = /^(1|true|yes|on)$/i.test(env.GIT_CONFIG_NOSYSTEM ?? '');
  // The system file is under git's prefix: /etc for distributions' git, /usr/local/etc for a built one.
  if (!noSystem) files.push(...(env.GIT_CONFIG_SYSTEM !== undefined ? [env.GIT_CONFIG_SYSTEM] : ['/etc/gitconfig', '/usr/local/etc/gitconfig']));
  const texts = await Promise.all(
    files.map((f) => (f === '' ? '' : readRegularText(f, MAX_CONFIG).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? '' : 'origin')))),
  );
  return texts.some((t) => MAY_NAME_ORIGIN.test(t));
}

/** `%D` → the branch HEAD is on and the first tag at HEAD. */
export function parseRefs(refs: string): { branch?: string; tag?: string } {
  let branch: string | undefined;
  let tag: string | undefined;
  for (const raw of refs.split(',')) {
    const ref = raw.trim();
    if (ref.startsWith('HEAD -> ')) branch ??= ref.slice('HEAD -> '.length);
    else if (ref.startsWith('tag: ')) tag ??= ref.slice('tag: '.length);
  }
  return { ...(branch !== undefined && { branch }), ...(tag !== undefined && { tag }) };
}

/** One git run; its stdout, or undefined on any failure (absent, not a repository, timeout). */
function run(cwd: string, env: Env, deadline: number, args: string[], d: Detection): Promise<string | undefined> {
  const timeout = deadline - Date.now();
  if (timeout <= 0) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let settled = false;
    const done = (value: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child) d.children.splice(d.children.indexOf(child) >>> 0, 1);
      resolve(value);
    };
    const timer = setTimeout(() => {
      child?.kill('SIGKILL');
      // A process git started may still hold the pipe open: let go of it.
      child?.stdout?.destroy();
      done(undefined);
    }, timeout);
    timer.unref();
    let child: ChildProcess | undefined;
    try {
      child = spawn('git', args, {
        cwd,
        // No prompt for credentials, no index lock taken, messages in one language.
        env: { ...env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'ignore'],
        windowsHide: true,
      });
    } catch {
      done(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout!.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_OUTPUT) child!.kill('SIGKILL');
      else chunks.push(c);
    });
    child.on('error', () => done(undefined));
    child.on('close', (code) => done(code === 0 && size <= MAX_OUTPUT ? Buffer.concat(chunks).toString('utf8') : undefined));
    d.children.push(child);
    if (!d.held) {
      // In the background, the host's exit does not wait for detection.
      child.unref();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
    }
  });
}

/** A commit message beyond this is not ours to send (the API clips it anyway). */
const MAX_OUTPUT = 1 << 20;
