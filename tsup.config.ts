import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The exporter, and the local intake as its own entry (datadog-ci-pipeline-exporter/intake), so
    // that the exporter never loads the intake's validator.
    entry: { index: 'src/index.ts', intake: 'src/intake/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
  {
    // The bin: ESM only, with a shebang; subcommands are split into chunks loaded on demand.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    splitting: true,
    banner: { js: '#!/usr/bin/env node' },
  },
]);
