// CPU time (process.cpuUsage: this process's threads, GC helpers included) of the hot path
// (hierarchy store → mapping → validation → serialization) and of the store alone, A/B between
// copies of src/, rounds interleaved, medians. Wall-clock figures on a shared 2-core machine
// swing by 2× with the load; CPU time much less. Used to check that holding a compact record
// (src/hierarchy/record.ts) does not slow the CPU path.
//
//   npx tsx bench/held-cpu.ts [--rounds 15] [--workload typical|git] --src .bench-out/before-src --src src
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { generate, TYPICAL } from './workload.js';
import { median } from './measure.js';

interface Internals {
  now: number;
  store: { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
  events: { levelOf(span: ReadableSpan): unknown };
  takeReady(): unknown[];
  shutdown(): Promise<void>;
}
interface Tree {
  exporter: () => Internals;
  /** A bare store whose resolve callback only passes the lineage on. */
  store: () => { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
}

async function load(src: string): Promise<Tree> {
  const index = (await import(pathToFileURL(resolve(src, 'index.ts')).href)) as { DatadogCIPipelineExporter: new (o: object) => unknown };
  const hierarchy = (await import(pathToFileURL(resolve(src, 'hierarchy/pending-store.ts')).href)) as {
    PendingStore: new (limits: object, callbacks: object) => { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
  };
  return {
    exporter: () => new index.DatadogCIPipelineExporter({ endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline', apiKey: 'bench-key', service: 'monorepo-build', logger: () => undefined }) as Internals,
    store: () =>
      new hierarchy.PendingStore(
        { maxPendingSpans: 1e9, maxRememberedSpans: 1e9, maxAgeMs: 1e12 },
        // Reads what the mapping always reads, so that a record's getters are paid for.
        { resolve: (s: ReadableSpan, _l: unknown, i: unknown) => (s.startTime[0] + s.endTime[1] + s.spanContext().spanId.length > 0 ? i : i), evict() {} },
      ),
  };
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function hot(tree: Tree, spans: readonly ReadableSpan[]): number {
  const ex = tree.exporter();
  const t0 = cpuUs();
  ex.now = Date.now();
  for (let i = 0; i < spans.length; i += 512) {
    const end = Math.min(spans.length, i + 512);
    for (let j = i; j < end; j++) ex.store.add(spans[j]!, ex.events.levelOf(spans[j]!));
    while (ex.store.drain(500)) ex.takeReady();
    ex.takeReady();
  }
  const us = (cpuUs() - t0) / spans.length;
  void ex.shutdown();
  return us;
}

function storeOnly(tree: Tree, spans: readonly ReadableSpan[], levels: readonly unknown[]): number {
  const store = tree.store();
  const t0 = cpuUs();
  for (let i = 0; i < spans.length; i++) store.add(spans[i]!, levels[i]);
  store.drain();
  return (cpuUs() - t0) / spans.length;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = Number(argv[argv.indexOf('--rounds') + 1]) || 15;
  const srcs = argv.flatMap((a, i) => (argv[i - 1] === '--src' ? [a] : []));
  const trees = await Promise.all(srcs.map(load));
  const wl = argv[argv.indexOf('--workload') + 1] === 'git' ? 'git' : 'typical';
  const w = generate(300, TYPICAL, 1, { gitOnResource: wl === 'git' });
  const levels = w.spans.map((s) => s.attributes['ci.level']);
  console.log(`workload: ${wl}, ${w.spans.length} spans, ${rounds} rounds, CPU µs per span`);
  const t = srcs.map(() => ({ hot: [] as number[], store: [] as number[] }));
  for (const tree of trees) {
    hot(tree, w.spans);
    storeOnly(tree, w.spans, levels);
  }
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < trees.length; k++) {
      const i = (k + r) % trees.length;
      t[i]!.hot.push(hot(trees[i]!, w.spans));
      t[i]!.store.push(storeOnly(trees[i]!, w.spans, levels));
    }
  }
  for (let i = 0; i < srcs.length; i++) {
    console.log(`${srcs[i]}: hot path median ${median(t[i]!.hot).toFixed(2)} (min ${Math.min(...t[i]!.hot).toFixed(2)}), store alone median ${median(t[i]!.store).toFixed(3)} (min ${Math.min(...t[i]!.store).toFixed(3)})`);
  }
  process.exit(0);
}

void main();
