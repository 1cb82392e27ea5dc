// The exporter's CPU hot path alone: hierarchy store → mapping → validation → serialization, on
// the bench workload, with no delivery. For A/B runs of one change (the full bench's wall-clock
// figures also move with the sink and the network stack, and the machine is noisy).
//
//   npx tsx bench/hotpath.ts [--rounds 15] [--workload typical|git|jenkins[,…]] [--src path/to/other/src ...]
// --workload git puts `ci.git.*` on every span (git on the resource), as `npm run bench` does;
// jenkins is the Jenkins-shaped vocabulary workload (bench/vocab-workload.ts: 129 spans per 112
// events), so µs per event are printed too. Several workloads (comma-separated) run in the same
// interleaved rounds, and each one's µs/event is compared with the first's (the bench's
// "Jenkins ≥ 0.8× the ci.* workload" is that ratio in events/s).
// With several --src trees (each a copy of src/), rounds alternate between them and the medians
// are printed side by side; the events each tree produced are compared byte for byte.
import { generate, TYPICAL } from './workload.js';
import { generateJenkins } from './vocab-workload.js';
import { median } from './measure.js';
import { isMainModule } from './main-module.js';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

interface Internals {
  now: number;
  store: { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
  /** The span's level: on the exporter's EventBuilder (older trees had it on the exporter). */
  events?: { levelOf(span: ReadableSpan): unknown };
  levelOf?(span: ReadableSpan): unknown;
  /** The first `count` gathered events, removed from the list (older trees took no argument and
   * returned them all). */
  takeReady(count?: number): Array<{ json: string; bytes: number }>;
  shutdown(): Promise<void>;
}

type Make = () => Internals;

/** Take every gathered event. */
const ALL = Number.MAX_SAFE_INTEGER;

/** A tree's exporter factory: `src` is a copy of src/ (its index.ts) or a bundled file (bench/alloc.ts uses it too). */
export async function load(src: string): Promise<Make> {
  const mod = (await import(pathToFileURL(/\.m?[jt]s$/.test(src) ? resolve(src) : resolve(src, 'index.ts')).href)) as {
    DatadogCIPipelineExporter: new (o: object) => unknown;
  };
  return () =>
    new mod.DatadogCIPipelineExporter({
      endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline',
      apiKey: 'bench-key',
      service: 'monorepo-build',
      logger: () => undefined,
    }) as Internals;
}

/**
 * Runs every span through the hot path; returns CPU µs per span, and the events' JSON when
 * `keep` (the warm-up run: the trees' outputs are compared). Timed runs drop each event once
 * taken, as delivery does once it is answered: keeping 33,600 strings per run would time the
 * old generation's growth and its collections rather than the path.
 */
export function runOnce(make: Make, spans: readonly ReadableSpan[], expected: number, keep = false): { us: number; events: string[] } {
  const ex = make();
  const events: string[] = [];
  let taken = 0;
  // CPU time of the process (this thread and V8's GC helpers): less moved by other processes
  // on a shared machine than wall time.
  const c0 = process.cpuUsage();
  ex.now = Date.now();
  const levelOf = ex.events ? ex.events.levelOf.bind(ex.events) : ex.levelOf!.bind(ex);
  const take = (): void => {
    for (const e of ex.takeReady(ALL)) {
      taken++;
      if (keep) events.push(e.json);
    }
  };
  for (let i = 0; i < spans.length; i += 512) {
    const end = Math.min(spans.length, i + 512);
    for (let j = i; j < end; j++) ex.store.add(spans[j]!, levelOf(spans[j]!));
    while (ex.store.drain(500)) take();
    take();
  }
  const c = process.cpuUsage(c0);
  const us = (c.user + c.system) / spans.length;
  // Each event is taken once. A takeReady that leaves the list in place (it once did, called with
  // no count) would time the iteration over an ever longer list instead of the path.
  if (taken !== expected) throw new Error(`hotpath: ${taken} events taken, ${expected} expected: the measurement would be wrong`);
  void ex.shutdown();
  return { us, events };
}

/** The JSON text with every object's keys sorted: equal for equal values, whatever the key order. */
function canonical(json: string): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]))
        : v;
  return JSON.stringify(sort(JSON.parse(json)));
}

/** One of the hot path's workloads by name: typical, git (ci.git.* on every span) or jenkins; events is what a correct exporter sends. */
export function workloadNamed(name: string): { name: string; spans: readonly ReadableSpan[]; events: number } {
  if (name === 'jenkins') {
    const j = generateJenkins(300);
    return { name, spans: j.spans, events: j.events };
  }
  if (name !== 'typical' && name !== 'git') throw new Error(`unknown workload ${name}`);
  const w = generate(300, TYPICAL, 1, { gitOnResource: name === 'git' });
  return { name, spans: w.spans, events: w.spans.length };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = Number(argv[argv.indexOf('--rounds') + 1]) || 15;
  const srcs = argv.flatMap((a, i) => (argv[i - 1] === '--src' ? [a] : []));
  if (srcs.length === 0) srcs.push(new URL('../src', import.meta.url).pathname);
  const makes = await Promise.all(srcs.map(load));
  const wi = argv.indexOf('--workload');
  const names = (wi === -1 ? 'typical' : (argv[wi + 1] ?? 'typical')).split(',');
  const workloads = names.map(workloadNamed);
  for (const w of workloads) console.log(`workload: ${w.name}, ${w.spans.length} spans, ${w.events} events`);
  console.log(`${rounds} rounds`);
  // times[w][i]: µs per span of tree i on workload w.
  const times: number[][][] = workloads.map(() => srcs.map(() => []));
  const outputs: string[][][] = workloads.map(() => []);
  // Warm-up, and the events each tree produced.
  for (let w = 0; w < workloads.length; w++) for (const make of makes) outputs[w]!.push(runOnce(make, workloads[w]!.spans, workloads[w]!.events, true).events);
  for (let r = 0; r < rounds; r++) {
    for (let w = 0; w < workloads.length; w++) {
      for (let k = 0; k < makes.length; k++) {
        const i = (k + r) % makes.length;
        times[w]![i]!.push(runOnce(makes[i]!, workloads[w]!.spans, workloads[w]!.events).us);
      }
    }
  }
  const perEvent = (w: number, i: number): number => median(times[w]![i]!) * (workloads[w]!.spans.length / workloads[w]!.events);
  for (let w = 0; w < workloads.length; w++) {
    const wl = workloads[w]!;
    for (let i = 0; i < srcs.length; i++) {
      const t = times[w]![i]!;
      const ratio = w > 0 ? `, events/s ${(perEvent(0, i) / perEvent(w, i)).toFixed(2)}× ${workloads[0]!.name}'s` : '';
      console.log(
        `[${wl.name}] ${srcs[i]}: median ${median(t).toFixed(2)} CPU µs/span (min ${Math.min(...t).toFixed(2)}), ${perEvent(w, i).toFixed(2)} µs/event${ratio}, ${outputs[w]![i]!.length} events`,
      );
    }
    for (let i = 1; i < srcs.length; i++) {
      const out = outputs[w]!;
      const a = [...out[0]!].sort();
      const b = [...out[i]!].sort();
      const same = a.length === b.length && a.every((s, k) => s === b[k]);
      // Key order aside: the same JSON values.
      const ca = out[0]!.map(canonical).sort();
      const cb = out[i]!.map(canonical).sort();
      const equal = ca.length === cb.length && ca.every((s, k) => s === cb[k]);
      const verdict = same ? 'byte for byte identical to' : equal ? 'equal (as JSON values; key order differs) to' : 'DIFFERENT from';
      console.log(`[${wl.name}] events of ${srcs[i]} ${verdict} ${srcs[0]}`);
    }
  }
  process.exit(0);
}

if (isMainModule(import.meta.url, 'hotpath')) void main();
