// Entry point of the bin (built to dist/cli.js with a shebang): runs the CLI, sets the exit code.
import { cli } from './index.js';

cli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`datadog-ci-pipeline-exporter: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
