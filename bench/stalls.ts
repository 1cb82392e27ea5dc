// Where the longest event-loop stalls of this exporter come from: A/B of two src/ trees on the
// throughput workload, interleaved, per run the longest stall, the longest single GC pause (and
// its kind), the GC total, CPU µs per span and requests. `npx tsx bench/stalls.ts --src DIR
// [--src DIR2] [--rounds N] [--workload typical|git] [--pipelines N]`
import { PerformanceObserver } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { bigShape, generate, TYPICAL } from './workload.js';
import { runOne } from './scale.js';
import { isSinkChild, startSink } from './sink.js';
import { ourExporter, warmWorkloadSpans, warmUp } from './contenders.js';
import { measure, median } from './measure.js';
import { loadExporterFrom } from './exporter.js';

const KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** The longest single GC pause since the last reset(), and its kind (forced collections left out). */
function longestGcPause(): { max: number; kind: string; reset(): void } {
  const gc = {
    max: 0,
    kind: '',
    reset() {
      gc.max = 0;
      gc.kind = '';
    },
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as unknown as { detail?: { kind?: number; flags?: number } }).detail;
      // A forced collection (flags & 4) is the bench's own fullGc() between phases.
      if ((detail?.flags ?? 0) & 4) continue;
      const kind = KINDS[detail?.kind ?? 0] ?? '?';
      // An incremental-marking entry spans the whole marking phase, run in steps between turns.
      if (kind !== 'incremental' && e.duration > gc.max) {
        gc.max = e.duration;
        gc.kind = kind;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  return gc;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const all = (name: string): string[] => argv.flatMap((a, i) => (a === name ? [argv[i + 1] as string] : []));
  const value = (name: string, d: string): string => all(name)[0] ?? d;
  const srcs = all('--src');
  if (srcs.length === 0) srcs.push('src');
  const rounds = Number(value('--rounds', '5'));
  const steps = Number(value('--scale', '0'));
  if (steps > 0) return scaleAb(srcs, steps, rounds);
  const pipelines = Number(value('--pipelines', '300'));
  const opts = { gitOnResource: value('--workload', 'typical') === 'git' };
  const w = generate(pipelines, TYPICAL, 1, opts);
  const warmSpans = warmWorkloadSpans(opts);
  const sink = await startSink();
  const makers = await Promise.all(srcs.map((s) => loadExporterFrom(s)));
  const res = srcs.map(() => [] as Array<{ rate: number; cpu: number; stall: number; gcMax: number; gcKind: string; gcMs: number; reqs: number }>);
  const gc = longestGcPause();
  console.log(`load ${loadavg()[0]!.toFixed(1)}; ${w.spans.length} spans`);
  for (let r = -1; r < rounds; r++) {
    for (let k = 0; k < srcs.length; k++) {
      const i = (k + Math.max(0, r)) % srcs.length;
      const c = ourExporter(() => makers[i]!(sink.pipelineUrl), w.spans, undefined, warmSpans);
      await c.setup();
      // Warmed after measure()'s collection, as bench/run.ts does (contenders.ts, `warm`).
      const s = await measure(
        () => c.run(),
        async () => {
          await warmUp(c);
          await sink.reset(false);
          gc.reset();
        },
      );
      const st = await sink.stats();
      await c.teardown();
      if (r < 0) continue;
      res[i]!.push({ rate: st.events / (s.wallMs / 1000), cpu: (s.cpuMs * 1000) / w.spans.length, stall: s.maxStallMs, gcMax: gc.max, gcKind: gc.kind, gcMs: s.gcMs, reqs: st.requests });
    }
  }
  for (let i = 0; i < srcs.length; i++) {
    const x = res[i]!;
    console.log(
      `${srcs[i]}: events/s ${median(x.map((y) => y.rate)).toFixed(0)}, cpu µs/span ${median(x.map((y) => y.cpu)).toFixed(1)}, ` +
        `stall median ${median(x.map((y) => y.stall)).toFixed(1)} worst ${Math.max(...x.map((y) => y.stall)).toFixed(1)} ms, ` +
        `gc pause max ${x.map((y) => `${y.gcMax.toFixed(0)}${y.gcKind[0] ?? ''}`).join(' ')}, gc ms ${median(x.map((y) => y.gcMs)).toFixed(0)}, requests ${median(x.map((y) => y.reqs))}`,
    );
  }
  console.log(`load ${loadavg()[0]!.toFixed(1)}`);
  sink.close();
}

/** `--scale STEPS`: one pipeline of STEPS steps (bench/scale.ts's run), A/B, interleaved. */
async function scaleAb(srcs: string[], steps: number, rounds: number): Promise<void> {
  const w = generate(1, bigShape(steps), 7);
  const sink = await startSink();
  const makers = await Promise.all(srcs.map((s) => loadExporterFrom(s)));
  const notes: string[] = [];
  const res = srcs.map(() => [] as Array<{ us: number; cpu: number; a: number; b: number; gc: string }>);
  const gc = longestGcPause();
  console.log(`load ${loadavg()[0]!.toFixed(1)}; ${w.spans.length} spans`);
  for (let r = -1; r < rounds; r++) {
    for (let k = 0; k < srcs.length; k++) {
      const i = (k + Math.max(0, r)) % srcs.length;
      gc.reset();
      const x = await runOne(makers[i]!, sink, w.spans, notes);
      if (r >= 0) res[i]!.push({ us: (x.wallMs * 1000) / w.spans.length, cpu: (x.cpuMs * 1000) / w.spans.length, a: x.stallA, b: x.stallB, gc: `${gc.max.toFixed(0)}${gc.kind[0] ?? ''}` });
    }
  }
  for (let i = 0; i < srcs.length; i++) {
    const x = res[i]!;
    console.log(
      `${srcs[i]}: µs/span ${median(x.map((y) => y.us)).toFixed(1)}, cpu µs/span ${median(x.map((y) => y.cpu)).toFixed(1)}, ` +
        `stall A (filing) ${x.map((y) => y.a.toFixed(0)).join(' ')}, stall B (resolve+deliver) ${x.map((y) => y.b.toFixed(0)).join(' ')} ms, longest GC pause ${x.map((y) => y.gc).join(' ')}`,
    );
  }
  if (notes.length > 0) console.log(notes.join('\n'));
  console.log(`load ${loadavg()[0]!.toFixed(1)}`);
  sink.close();
}

if (!isSinkChild) void main();
