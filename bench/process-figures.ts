// The figures that need fresh processes: module load time, the short-lived CI process (time from
// the last span's end to the process's exit), and memory per held span with everything the
// exporter keeps alive counted. Each is compared with the OTLP/HTTP exporter where the issue
// asks for it. The package is bundled from src/ (esbuild, dependencies external, like the
// published dist/), so the children run plain Node, not tsx.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { median } from './measure.js';
import { isMainModule } from './main-module.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = resolve(root, '.bench-out/pkg');
export const OTLP = '@opentelemetry/exporter-trace-otlp-http';

export interface ProcessFigures {
  loadMs: { ours: number; otlp: number; runs: number } | undefined;
  /**
   * Import, construction and one span delivered, in a fresh process. Since undici is loaded at
   * the exporter's construction (not at import), this is where its load shows.
   */
  firstSend: { oursMs: number; otlpMs: number; oursCpuMs: number; otlpCpuMs: number; runs: number } | undefined;
  shortLived: { oursMs: number; otlpMs: number; ratio: number; runs: number } | undefined;
  memory: { bytesPerSpan: number; held: number } | undefined;
}

export interface ProcessFigureOptions {
  quick: boolean;
  /** Another copy of src/ to measure instead (A/B). */
  src?: string | undefined;
  url: string;
  log: (line: string) => void;
}

/** Bundles src/index.ts and the child script; returns their file URLs. */
export async function bundle(src: string, tag: string): Promise<{ pkg: string; child: string }> {
  mkdirSync(outDir, { recursive: true });
  const pkg = resolve(outDir, `${tag}-index.mjs`);
  const child = resolve(outDir, 'process-child.mjs');
  await build({ entryPoints: [resolve(src, 'index.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: pkg, logLevel: 'error' });
  await build({ entryPoints: [resolve(root, 'bench/process-child.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: child, logLevel: 'error' });
  return { pkg: pathToFileURL(pkg).href, child };
}

export interface ChildResult {
  out: Record<string, number>;
  exitAt: number;
}

export function runChild(args: string[], nodeFlags: string[] = []): Promise<ChildResult> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, [...nodeFlags, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => {
      const exitAt = performance.timeOrigin + performance.now();
      if (code !== 0) return reject(new Error(`child ${args.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`));
      try {
        const line = stdout.trim().split('\n').pop() ?? '';
        resolvePromise({ out: JSON.parse(line) as Record<string, number>, exitAt });
      } catch {
        reject(new Error(`child ${args.join(' ')} printed no result: ${stdout.slice(0, 300)} ${stderr.slice(0, 300)}`));
      }
    });
  });
}

export async function processFigures(o: ProcessFigureOptions): Promise<ProcessFigures> {
  const { pkg, child } = await bundle(o.src ?? resolve(root, 'src'), o.src ? 'ab' : 'src');
  const runs = o.quick ? 5 : 20;
  const loadRuns = o.quick ? 5 : 11;
  const figures: ProcessFigures = { loadMs: undefined, firstSend: undefined, shortLived: undefined, memory: undefined };

  // Module load: `await import()` of the package's entry in a fresh process, interleaved.
  const load = { ours: [] as number[], otlp: [] as number[] };
  for (let i = 0; i < loadRuns; i++) {
    load.ours.push((await runChild([child, 'load', pkg])).out.loadMs as number);
    load.otlp.push((await runChild([child, 'load', OTLP])).out.loadMs as number);
  }
  figures.loadMs = { ours: median(load.ours), otlp: median(load.otlp), runs: loadRuns };
  o.log(`module load: this package ${figures.loadMs.ours.toFixed(1)} ms, OTLP exporter ${figures.loadMs.otlp.toFixed(1)} ms (medians of ${loadRuns} fresh processes)`);

  // Import → first span delivered: the module load figure above no longer includes undici (loaded
  // at construction), so this one says what a process pays before its first event is sent.
  const firstRuns = { ours: [] as number[], otlp: [] as number[], oursCpu: [] as number[], otlpCpu: [] as number[] };
  for (let i = 0; i < loadRuns; i++) {
    const a = (await runChild([child, 'first', 'ours', pkg, o.url])).out;
    firstRuns.ours.push(a.firstMs as number);
    firstRuns.oursCpu.push(a.firstCpuMs as number);
    const b = (await runChild([child, 'first', 'otlp', OTLP, o.url.replace('/api/v2/ci/pipeline', '/v1/traces')])).out;
    firstRuns.otlp.push(b.firstMs as number);
    firstRuns.otlpCpu.push(b.firstCpuMs as number);
  }
  figures.firstSend = { oursMs: median(firstRuns.ours), otlpMs: median(firstRuns.otlp), oursCpuMs: median(firstRuns.oursCpu), otlpCpuMs: median(firstRuns.otlpCpu), runs: loadRuns };
  o.log(
    `import → construction → first span delivered: this exporter ${figures.firstSend.oursMs.toFixed(0)} ms (CPU ${figures.firstSend.oursCpuMs.toFixed(0)} ms), ` +
      `OTLP exporter ${figures.firstSend.otlpMs.toFixed(0)} ms (CPU ${figures.firstSend.otlpCpuMs.toFixed(0)} ms) (medians of ${loadRuns} fresh processes; undici loads at construction)`,
  );

  // Short-lived CI process: last span's end → process exit, interleaved.
  const tail = { ours: [] as number[], otlp: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const a = await runChild([child, 'short', 'ours', pkg, o.url]);
    tail.ours.push(a.exitAt - (a.out.lastEnd as number));
    const b = await runChild([child, 'short', 'otlp', OTLP, o.url.replace('/api/v2/ci/pipeline', '/v1/traces')]);
    tail.otlp.push(b.exitAt - (b.out.lastEnd as number));
  }
  const oursMs = median(tail.ours);
  const otlpMs = median(tail.otlp);
  figures.shortLived = { oursMs, otlpMs, ratio: oursMs / otlpMs, runs };
  o.log(`short-lived process (last span end → exit): this exporter ${oursMs.toFixed(0)} ms, OTLP ${otlpMs.toFixed(0)} ms (medians of ${runs})`);

  // Memory per held span, the span object and everything else it keeps alive included.
  const count = o.quick ? 10_000 : 50_000;
  const m = await runChild([child, 'memory', pkg, String(count)], ['--expose-gc']);
  figures.memory = { bytesPerSpan: m.out.bytesPerSpan as number, held: m.out.held as number };
  o.log(`memory per held span, all counted: ${figures.memory.bytesPerSpan.toFixed(0)} B (${figures.memory.held} held)`);
  return figures;
}

// `tsx bench/process-figures.ts [--quick] [--src DIR]`: these figures alone (DIR: another copy of
// src/, e.g. from before a change), against the bench's sink.
if (isMainModule(import.meta.url, 'process-figures')) {
  const { startSink } = await import('./sink.js');
  const at = process.argv.indexOf('--src');
  const sink = await startSink();
  try {
    await processFigures({ quick: process.argv.includes('--quick'), src: at > 0 ? resolve(process.argv[at + 1] as string) : undefined, url: sink.pipelineUrl, log: (l) => console.log(l) });
  } finally {
    sink.close();
  }
}
