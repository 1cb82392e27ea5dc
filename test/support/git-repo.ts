// A real temporary git repository for detection tests: a fixed author and committer with set
// dates, no system or user config (HOME is the repository), no signing, no automatic gc.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GIT_IDENTITY_ENV = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Ada Author',
  GIT_AUTHOR_EMAIL: 'ada@example.com',
  GIT_AUTHOR_DATE: '2024-03-01T10:00:00+01:00',
  GIT_COMMITTER_NAME: 'Carl Committer',
  GIT_COMMITTER_EMAIL: 'carl@example.com',
  GIT_COMMITTER_DATE: '2024-03-02T12:30:00Z',
};

export interface GitRepo {
  dir: string;
  /** Runs git in the repository; its stdout. */
  git(...args: string[]): string;
  /** The same, with more variables (e.g. another author date). */
  gitEnv(env: Record<string, string>, ...args: string[]): string;
}

/** A fresh repository on branch `trunk`, removed after the test. */
export function makeGitRepo(t: { after(fn: () => void): void }, prefix = 'git-repo-'): GitRepo {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const gitEnv = (env: Record<string, string>, ...args: string[]): string =>
    execFileSync('git', ['-c', 'commit.gpgsign=false', '-c', 'tag.gpgsign=false', '-c', 'gc.auto=0', ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, ...GIT_IDENTITY_ENV, ...env },
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'ignore'],
    });
  const repo = { dir, git: (...args: string[]) => gitEnv({}, ...args), gitEnv };
  repo.git('init', '-q', '-b', 'trunk');
  return repo;
}
