// The short-lived CI process (bench/process-child.ts `short`: a 100-span pipeline that runs about a
// second, then shutdown()) for several src/ trees and the OTLP exporter, interleaved in one loop:
// a few milliseconds of difference is lost between two separate `process-figures` runs, whose
// OTLP baseline alone moves by 5-10 ms from one run to the next on this machine.
//
//   npx tsx bench/short-ab.ts [--runs 20] src .bench-out/before/src …
// Prints, per tree, the median time from the last span's end to the process's exit, its ratio to
// the OTLP exporter's, and the median of the part before shutdown() resolved (the rest is Node's
// own exit).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { median } from './measure.js';
import { startSink } from './sink.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = resolve(root, '.bench-out/short-ab');

interface Sample {
  tailMs: number;
  shutdownMs: number;
}

function runChild(args: string[]): Promise<Sample> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' } });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => {
      const exitAt = performance.timeOrigin + performance.now();
      if (code !== 0) return fail(new Error(`child exited ${code}`));
      const r = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { lastEnd: number; shutDown: number };
      done({ tailMs: exitAt - r.lastEnd, shutdownMs: r.shutDown - r.lastEnd });
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--runs');
  const runs = at >= 0 ? Number(argv[at + 1]) : 20;
  const srcs = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--runs');
  if (srcs.length === 0) srcs.push('src');
  mkdirSync(outDir, { recursive: true });
  const child = resolve(outDir, 'process-child.mjs');
  const opts = { bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'error' } as const;
  await build({ ...opts, entryPoints: [resolve(root, 'bench/process-child.ts')], outfile: child });
  const pkgs: string[] = [];
  for (const [i, src] of srcs.entries()) {
    const file = resolve(outDir, `tree-${i}.mjs`);
    await build({ ...opts, entryPoints: [resolve(src, 'index.ts')], outfile: file });
    pkgs.push(pathToFileURL(file).href);
  }
  const sink = await startSink();
  // One row per tree, the last for the OTLP exporter; the order rotates every round.
  const rows: Sample[][] = [...srcs.map(() => []), []];
  try {
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < rows.length; k++) {
        const j = (k + r) % rows.length;
        const args =
          j < srcs.length
            ? [child, 'short', 'ours', pkgs[j]!, sink.pipelineUrl]
            : [child, 'short', 'otlp', '@opentelemetry/exporter-trace-otlp-http', sink.tracesUrl];
        rows[j]!.push(await runChild(args));
      }
    }
  } finally {
    sink.close();
  }
  const otlp = median(rows[srcs.length]!.map((s) => s.tailMs));
  const line = (name: string, s: Sample[]): string => {
    const tail = median(s.map((x) => x.tailMs));
    return `${name}: ${tail.toFixed(1)} ms (${(tail / otlp).toFixed(3)}× OTLP), shutdown() ${median(s.map((x) => x.shutdownMs)).toFixed(1)} ms`;
  };
  console.log(`last span end → exit, medians of ${runs} fresh processes each, interleaved:`);
  for (const [i, src] of srcs.entries()) console.log(`  ${line(src, rows[i]!)}`);
  console.log(`  ${line('OTLP exporter', rows[srcs.length]!)}`);
}

await main();
