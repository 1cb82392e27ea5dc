// The exporter's CPU hot path alone: hierarchy store → mapping → validation → serialization, on
// the bench workload, with no delivery. For A/B runs of one change (the full bench's wall-clock
// figures also move with the sink and the network stack, and the machine is noisy).
//
//   npx tsx bench/hotpath.ts [--rounds 15] [--workload typical|git] [--src path/to/other/src ...]
// --workload git puts `ci.git.*` on every span (git on the resource), as `npm run bench` does.
// With several --src trees (each a copy of src/), rounds alternate between them and the medians
// are printed side by side; the events each tree produced are compared byte for byte.
import { generate, TYPICAL } from './workload.js';
import { median } from './measure.js';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

interface Internals {
  now: number;
  store: { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
  /** The span's level: on the exporter's EventBuilder (older trees had it on the exporter). */
  events?: { levelOf(span: ReadableSpan): unknown };
  levelOf?(span: ReadableSpan): unknown;
  takeReady(): Array<{ json: string; bytes: number }>;
  shutdown(): Promise<void>;
}

type Make = () => Internals;

async function load(src: string): Promise<Make> {
  const mod = (await import(pathToFileURL(resolve(src, 'index.ts')).href)) as {
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

/** Runs every span through the hot path; returns µs per span and the events' JSON. */
function runOnce(make: Make, spans: readonly ReadableSpan[]): { us: number; events: string[] } {
  const ex = make();
  const events: string[] = [];
  const t0 = performance.now();
  ex.now = Date.now();
  const levelOf = ex.events ? ex.events.levelOf.bind(ex.events) : ex.levelOf!.bind(ex);
  for (let i = 0; i < spans.length; i += 512) {
    const end = Math.min(spans.length, i + 512);
    for (let j = i; j < end; j++) ex.store.add(spans[j]!, levelOf(spans[j]!));
    while (ex.store.drain(500)) {
      for (const e of ex.takeReady()) events.push(e.json);
    }
    for (const e of ex.takeReady()) events.push(e.json);
  }
  const us = ((performance.now() - t0) * 1000) / spans.length;
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = Number(argv[argv.indexOf('--rounds') + 1]) || 15;
  const srcs = argv.flatMap((a, i) => (argv[i - 1] === '--src' ? [a] : []));
  if (srcs.length === 0) srcs.push(new URL('../src', import.meta.url).pathname);
  const makes = await Promise.all(srcs.map(load));
  const wl = argv[argv.indexOf('--workload') + 1] === 'git' ? 'git' : 'typical';
  const w = generate(300, TYPICAL, 1, { gitOnResource: wl === 'git' });
  console.log(`workload: ${wl}, ${w.spans.length} spans, ${rounds} rounds`);
  const times: number[][] = srcs.map(() => []);
  const outputs: string[][] = [];
  // Warm-up, and the events each tree produced.
  for (const make of makes) outputs.push(runOnce(make, w.spans).events);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < makes.length; k++) {
      const i = (k + r) % makes.length;
      times[i]!.push(runOnce(makes[i]!, w.spans).us);
    }
  }
  for (let i = 0; i < srcs.length; i++) {
    const t = times[i]!;
    console.log(`${srcs[i]}: median ${median(t).toFixed(2)} µs/span (min ${Math.min(...t).toFixed(2)}), ${outputs[i]!.length} events`);
  }
  for (let i = 1; i < outputs.length; i++) {
    const a = [...outputs[0]!].sort();
    const b = [...outputs[i]!].sort();
    const same = a.length === b.length && a.every((s, k) => s === b[k]);
    // Key order aside: the same JSON values.
    const ca = outputs[0]!.map(canonical).sort();
    const cb = outputs[i]!.map(canonical).sort();
    const equal = ca.length === cb.length && ca.every((s, k) => s === cb[k]);
    const verdict = same ? 'byte for byte identical to' : equal ? 'equal (as JSON values; key order differs) to' : 'DIFFERENT from';
    console.log(`events of ${srcs[i]} ${verdict} ${srcs[0]}`);
  }
  process.exit(0);
}

void main();
