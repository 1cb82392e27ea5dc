// What the CPU path allocates per span, by allocating function: V8's sampling heap profiler over
// the hot path of bench/hotpath.ts (store → mapping → validation → serialization, no delivery),
// objects the collector has already freed counted too (they are what the young generation's
// collections cost). For finding garbage, not for timing: the profiler slows the run.
//
//   npx tsx bench/alloc.ts [--workload typical|git|jenkins] [--src path/to/src-or-bundle] [--top 30]
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { generate, TYPICAL } from './workload.js';
import { generateJenkins } from './vocab-workload.js';

interface Internals {
  now: number;
  store: { add(span: ReadableSpan, level: unknown): void; drain(budget?: number): boolean };
  events: { levelOf(span: ReadableSpan): unknown };
  takeReady(count?: number): unknown[];
  shutdown(): Promise<void>;
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const workload = arg('--workload') ?? 'git';
const src = arg('--src') ?? new URL('../src', import.meta.url).pathname;
const top = Number(arg('--top') ?? 30);

const mod = (await import(pathToFileURL(/\.m?[jt]s$/.test(src) ? resolve(src) : resolve(src, 'index.ts')).href)) as {
  DatadogCIPipelineExporter: new (o: object) => unknown;
};
const spans: readonly ReadableSpan[] =
  workload === 'jenkins' ? generateJenkins(300).spans : generate(300, TYPICAL, 1, { gitOnResource: workload === 'git' }).spans;

function runOnce(): void {
  const ex = new mod.DatadogCIPipelineExporter({
    endpoint: 'http://127.0.0.1:9/api/v2/ci/pipeline',
    apiKey: 'bench-key',
    service: 'monorepo-build',
    logger: () => undefined,
  }) as Internals;
  ex.now = Date.now();
  for (let i = 0; i < spans.length; i += 512) {
    const end = Math.min(spans.length, i + 512);
    for (let j = i; j < end; j++) ex.store.add(spans[j]!, ex.events.levelOf(spans[j]!));
    while (ex.store.drain(500)) ex.takeReady(Number.MAX_SAFE_INTEGER);
    ex.takeReady(Number.MAX_SAFE_INTEGER);
  }
  void ex.shutdown();
}

const ROUNDS = 3;
for (let i = 0; i < ROUNDS; i++) runOnce(); // warm: optimized code allocates differently
const session = new Session();
session.connect();
// The two include flags are in the protocol but not in @types/node's parameter type.
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 128,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
} as { samplingInterval: number });
for (let i = 0; i < ROUNDS; i++) runOnce();
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
session.disconnect();

const bySite = new Map<string, number>();
let total = 0;
const walk = (n: ProfileNode, callers: string[]): void => {
  const name = n.callFrame.functionName || '(anonymous)';
  if (n.selfSize > 0) {
    const file = n.callFrame.url.split('/').slice(-2).join('/');
    const key = `${name} ${file}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}  <  ${callers.slice(-2).join(' < ')}`;
    bySite.set(key, (bySite.get(key) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c, [...callers, name]);
};
walk(profile.head, []);
const perSpan = (bytes: number): string => (bytes / (spans.length * ROUNDS)).toFixed(0).padStart(6);
console.log(`workload ${workload}, ${spans.length} spans × ${ROUNDS} runs, ${src}`);
console.log(`${perSpan(total)} B per span allocated in all (sampled every 128 B)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${perSpan(bytes)} B  ${site}`);
