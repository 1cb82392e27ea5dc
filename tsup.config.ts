import { writeFile } from 'node:fs/promises';
import { defineConfig, type Options } from 'tsup';

type Plugin = NonNullable<Options['plugins']>[number];

// The chunks a CommonJS bin loads on demand (a subcommand, undici's files) are loaded with
// require(): rollup keeps an `import()` as it is, and an import() starts Node's ESM loader, which
// is what a CommonJS bin is for avoiding. Runs on esbuild's ESM chunks, before rollup. Each
// require() waits for the event loop's next turn (setImmediate), as an import() reads its files
// asynchronously: the code after `loadUndici()` (`run` spawning the command) runs before undici's
// ~40 ms of loading, and an exit or error already queued is seen before a running event is sent.
const requireChunks: Plugin = {
  name: 'require-chunks',
  renderChunk(code) {
    if (this.format !== 'cjs') return undefined;
    return { code: code.replace(/\bimport\((["'])(\.\/[\w.-]+\.cjs)\1\)/g, 'new Promise((r) => setImmediate(r)).then(() => require($1$2$1))') };
  },
};

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

// undici's HTTP/2 client requires node:http2 when it loads, ~20 ms of a `run`'s start-up on the
// bench machine, for a protocol the exporter never asks for (undici speaks HTTP/2 only with
// allowH2, which delivery does not set). In the bin, that require throws instead, and undici
// takes the path it has for a Node built without HTTP/2 (`http2 = { constants: {} }`).
const noHttp2: EsbuildPlugin = {
  name: 'no-http2',
  setup(build) {
    build.onResolve({ filter: /^(node:)?http2$/ }, (args) =>
      /undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/.test(args.importer) ? { path: 'http2', namespace: 'no-http2' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'no-http2' }, () => ({
      contents: "throw new Error('node:http2 is left out of the datadog-ci-pipeline-exporter bin (undici is used over HTTP/1.1)');",
      loader: 'js',
    }));
  },
};

// undici requires node:http when it loads, for two things: IncomingMessage, to recognise a
// request body that is one (delivery sends Buffers), and maxHeaderSize, its default cap on
// response headers. node:http and the modules under it are not in Node's start-up snapshot:
// compiling them cost each `run` 10–15 ms (bench/run-overhead.ts). In the bin, undici gets a
// stand-in with the two: a class no body is an instance of, and Node's default cap (16 KiB), or
// node:http's own value when the process was started with --max-http-header-size.
const undiciHttp: EsbuildPlugin = {
  name: 'undici-http',
  setup(build) {
    build.onResolve({ filter: /^(node:)?http$/ }, (args) =>
      /undici[\\/]lib[\\/](core[\\/]util|dispatcher[\\/]client)\.js$/.test(args.importer) ? { path: 'http', namespace: 'undici-http' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'undici-http' }, () => ({
      contents: [
        'const flagged = /--max-http-header-size/.test(`${process.execArgv.join(" ")} ${process.env.NODE_OPTIONS ?? ""}`);',
        'module.exports = {',
        '  IncomingMessage: class NotAnIncomingMessage {},',
        '  get maxHeaderSize() { return flagged ? require("node:http").maxHeaderSize : 16 * 1024; },',
        '};',
      ].join('\n'),
      loader: 'js',
    }));
  },
};

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
    // The bin: CommonJS (dist/cli.cjs, with a shebang); subcommands are split into chunks loaded
    // on demand. CommonJS because Node's ESM loader costs a `run` ~20-30 ms of CPU at every start
    // (its internals compiled, each chunk linked as a module): `run` starts once per build step.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['cjs'],
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    // Split into chunks for CommonJS too: esbuild splits ESM only, and tsup's own ESM → CommonJS
    // pass (sucrase) rewrites every `?.` and `??` into helper calls, slower on serve's hot paths;
    // with treeshake, rollup turns esbuild's ESM chunks into CommonJS chunks and leaves the code as it is.
    splitting: true,
    treeshake: true,
    plugins: [requireChunks],
    esbuildPlugins: [noHttp2, undiciHttp],
    // tsup's own plugin would take every `node:` import first (stripping the prefix, which
    // Node 20 does not need), before noHttp2 and undiciHttp could see undici's.
    removeNodeProtocol: false,
    // The bin is bundled whole: resolving undici's hundred CommonJS files costs a `run` more
    // start-up time than the command it wraps (see the run-overhead figure of npm run bench).
    noExternal: [/^undici/, /^@opentelemetry\//],
    banner: { js: '#!/usr/bin/env node' },
    // dist/cli.js, the bin's former name, still works (`node dist/cli.js serve`): it loads the
    // CommonJS bin (paying the ESM loader the bin itself avoids).
    onSuccess: async () => {
      await writeFile('dist/cli.js', "#!/usr/bin/env node\n// The bin is dist/cli.cjs; this name is kept for those who run dist/cli.js.\nimport './cli.cjs';\n", { mode: 0o755 });
    },
  },
]);
