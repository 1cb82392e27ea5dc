// Entry point of the bin (built to dist/cli.cjs with a shebang): runs the CLI, sets the exit code.
import module from 'node:module';
import { cli } from './index.js';

// Node ≥ 22.1 can keep the compiled code of the modules a process loads on disk and reuse it in
// the next process: `run` starts once per build step, and compiling its chunks is a good part of
// its start-up. A no-op on Node 20 (no such function) and never fatal; NODE_DISABLE_COMPILE_CACHE
// turns it off, as for any Node program.
try {
  (module as unknown as { enableCompileCache?: () => unknown }).enableCompileCache?.();
} catch {
  // start-up as without it
}

cli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`datadog-ci-pipeline-exporter: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
