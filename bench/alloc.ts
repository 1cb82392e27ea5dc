// What the CPU path allocates per span, by allocating function: V8's sampling heap profiler over
// the hot path of bench/hotpath.ts (store → mapping → validation → serialization, no delivery),
// objects the collector has already freed counted too (they are what the young generation's
// collections cost). For finding garbage, not for timing: the profiler slows the run.
//
//   npx tsx bench/alloc.ts [--workload typical|git|jenkins] [--src path/to/src-or-bundle] [--top 30]
import { Session } from 'node:inspector/promises';
import { load, runOnce, workloadNamed } from './hotpath.js';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const workload = workloadNamed(arg('--workload') ?? 'git');
const src = arg('--src') ?? new URL('../src', import.meta.url).pathname;
const top = Number(arg('--top') ?? 30);
const make = await load(src);
const spans = workload.spans;
// The hot path as bench/hotpath.ts runs it (store → mapping → validation → serialization).
const runOne = (): void => void runOnce(make, spans, workload.events);

const ROUNDS = 3;
for (let i = 0; i < ROUNDS; i++) runOne(); // warm: optimized code allocates differently
const session = new Session();
session.connect();
// The two include flags are in the protocol but not in @types/node's parameter type.
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 128,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
} as { samplingInterval: number });
for (let i = 0; i < ROUNDS; i++) runOne();
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
console.log(`workload ${workload.name}, ${spans.length} spans × ${ROUNDS} runs, ${src}`);
console.log(`${perSpan(total)} B per span allocated in all (sampled every 128 B)`);
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${perSpan(bytes)} B  ${site}`);
