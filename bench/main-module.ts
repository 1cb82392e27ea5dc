// "Is this module the script Node was started with?" for the bench's files that also run alone.
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * True when `url` (the caller's `import.meta.url`) is the file Node was started with and that
 * file is the module `name` itself. The name check matters in a bundle (the profiling recipe in
 * docs/PERFORMANCE.md): there every module's `import.meta.url` is the bundle's, so without it
 * live.ts and process-figures.ts would each start their own bench inside the bundled run.ts.
 */
export function isMainModule(url: string, name: string): boolean {
  const script = process.argv[1];
  return script !== undefined && fileURLToPath(url) === script && basename(script).replace(/\.[cm]?[jt]s$/, '') === name;
}
