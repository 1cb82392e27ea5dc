// The short-lived CI process (bench/process-child.ts `short`: a 100-span pipeline that runs about a
// second, then shutdown()) for several src/ trees and the OTLP exporter, interleaved in one loop:
// a few milliseconds of difference is lost between two separate `process-figures` runs, whose
// OTLP baseline alone moves by 5-10 ms from one run to the next on this machine.
//
//   npx tsx bench/short-ab.ts [--runs 20] src .bench-out/before/src …
// Prints, per tree, the median time from the last span's end to the process's exit, its ratio to
// the OTLP exporter's, and the median of the part before shutdown() resolved (the rest is Node's
// own exit).
import { resolve } from 'node:path';
import { median } from './measure.js';
import { bundle, OTLP, runChild } from './process-figures.js';
import { startSink } from './sink.js';

interface Sample {
  tailMs: number;
  shutdownMs: number;
}

async function short(args: string[]): Promise<Sample> {
  const { out, exitAt } = await runChild(args);
  return { tailMs: exitAt - (out.lastEnd as number), shutdownMs: (out.shutDown as number) - (out.lastEnd as number) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--runs');
  const runs = at >= 0 ? Number(argv[at + 1]) : 20;
  const srcs = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--runs');
  if (srcs.length === 0) srcs.push('src');
  const built = [];
  for (const [i, src] of srcs.entries()) built.push(await bundle(resolve(src), `short-ab-${i}`));
  const sink = await startSink();
  // One row per tree, the last for the OTLP exporter; the order rotates every round.
  const rows: Sample[][] = [...srcs.map(() => []), []];
  try {
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < rows.length; k++) {
        const j = (k + r) % rows.length;
        const b = built[j];
        const args = b
          ? [b.child, 'short', 'ours', b.pkg, sink.pipelineUrl]
          : [built[0]!.child, 'short', 'otlp', OTLP, sink.tracesUrl];
        rows[j]!.push(await short(args));
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
