// Whether the built bin (dist/cli.cjs) is current: the tests and the benchmark run the bin as users
// do when it is, and fall back (tsx entry, or a build) when src/ changed since.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUILT_CLI = join(REPO_ROOT, 'dist', 'cli.cjs');

/** The newest modification time of any file under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** dist/cli.cjs exists and is no older than anything in src/. */
export function builtCliIsCurrent(): boolean {
  try {
    return statSync(BUILT_CLI).mtimeMs >= newest(join(REPO_ROOT, 'src'));
  } catch {
    return false; // not built
  }
}
