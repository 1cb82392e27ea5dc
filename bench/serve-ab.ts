// serve alone, A/B: the same OTLP/protobuf load (bench/serve.ts' shape: a real exporter, 512-span
// batches, one request at a time) through two builds of the bin, interleaved per round, with
// the serve child's own CPU time per span (from /proc, so the load of the machine weighs less
// than on wall-clock rates) next to spans/s and the in-process rate of the same spans.
//
//   npm run build && cp -r dist .bench-out/base-dist     (the baseline, once)
//   ... change, npm run build ...
//   npx tsx bench/serve-ab.ts [--rounds 5] [--pipelines 150] [--a .bench-out/base-dist/cli.js] [--b dist/cli.js] [--prof DIR]
// --prof runs B's child under --cpu-prof (profiles written to DIR at its exit). A_NODE_ARGS and
// B_NODE_ARGS (space-separated) add Node flags to each child, e.g. B_NODE_ARGS=--max-semi-space-size=32.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { driveExporter } from './contenders.js';
import { loadExporter } from './exporter.js';
import { median } from './measure.js';
import { spawnServe, waitForEvents } from './serve.js';
import { startSink } from './sink.js';
import { generate, TYPICAL } from './workload.js';

const argv = process.argv.slice(2);
const value = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const rounds = Number(value('--rounds') ?? 5);
const pipelines = Number(value('--pipelines') ?? 150);
const binA = value('--a') ?? '.bench-out/base-dist/cli.js';
const binB = value('--b') ?? 'dist/cli.js';
const prof = value('--prof');
const only = value('--only'); // 'a' | 'b'

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
}

const sink = await startSink();
const make = loadExporter();
const names = only ? [only] : ['a', 'b'];
const servers: Record<string, { child: ChildProcess; url: string }> = {};
for (const n of names) servers[n] = await spawnServe([...(n === 'b' && prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...((n === 'b' ? process.env.B_NODE_ARGS : process.env.A_NODE_ARGS)?.split(' ').filter(Boolean) ?? []), resolve(n === 'a' ? binA : binB)], sink.pipelineUrl);
await new Promise((r) => setTimeout(r, 300));
const res: Record<string, { rate: number[]; cpuUsPerSpan: number[]; ratio: number[] }> = {};
for (const n of names) res[n] = { rate: [], cpuUsPerSpan: [], ratio: [] };
const inProc: number[] = [];
console.log(`serve A/B: ${pipelines} pipelines per round, ${rounds} rounds (+1 warm-up); load ${loadavg()[0]!.toFixed(2)}`);
for (let round = 0; round <= rounds; round++) {
  // Each server remembers the span IDs it resolved: a fresh workload per round.
  const spans = generate(pipelines, TYPICAL, 100 + round).spans;
  await sink.reset();
  const ex = make(sink.pipelineUrl);
  let t = performance.now();
  await driveExporter(ex, spans);
  await waitForEvents(sink, spans.length, 120_000);
  const inRate = spans.length / ((performance.now() - t) / 1000);
  await ex.shutdown();
  const order = round % 2 === 0 ? names : [...names].reverse();
  const line: string[] = [`in process ${Math.round(inRate)}/s`];
  for (const n of order) {
    const { child, url } = servers[n]!;
    await sink.reset();
    const otlp = new OTLPTraceExporter({ url: `${url}/v1/traces` });
    const c0 = cpuMs(child.pid!);
    t = performance.now();
    await driveExporter(otlp, spans);
    await waitForEvents(sink, spans.length, 120_000);
    const ms = performance.now() - t;
    const cpu = cpuMs(child.pid!) - c0;
    await otlp.shutdown();
    const rate = spans.length / (ms / 1000);
    line.push(`${n}: ${Math.round(rate)}/s (${(rate / inRate).toFixed(2)}×), serve CPU ${((cpu * 1000) / spans.length).toFixed(1)} µs/span`);
    if (round > 0) {
      res[n]!.rate.push(rate);
      res[n]!.ratio.push(rate / inRate);
      res[n]!.cpuUsPerSpan.push((cpu * 1000) / spans.length);
    }
  }
  if (round > 0) inProc.push(inRate);
  console.log(`${round === 0 ? 'warm-up' : `round ${round}`} (${spans.length} spans): ${line.join('; ')}`);
}
console.log(`medians: in process ${Math.round(median(inProc))}/s`);
for (const n of names) {
  const r = res[n]!;
  console.log(`  ${n} (${n === 'a' ? binA : binB}): ${Math.round(median(r.rate))} spans/s, ratio ${median(r.ratio).toFixed(2)}×, serve CPU ${median(r.cpuUsPerSpan).toFixed(1)} µs/span`);
}
console.log(`load at end ${loadavg()[0]!.toFixed(2)}`);
for (const n of names) {
  const { child } = servers[n]!;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}
sink.close();
process.exit(0);
