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
    // The bin is bundled whole: resolving undici's hundred CommonJS files costs a `run` more
    // start-up time than the command it wraps (see the run-overhead figure of npm run bench).
    noExternal: [/^undici/, /^@opentelemetry\//],
    // undici is CommonJS: its require() of Node built-ins needs a real require in an ES module.
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __ddCreateRequire } from 'node:module';\nconst require = __ddCreateRequire(import.meta.url);" },
  },
]);
