// What one timed run costs: wall time, CPU of this process, peak RSS and the longest event-loop
// stall. Everything runs in one process, so each run starts from a collected heap; otherwise the
// previous contender's garbage would be collected on the next one's clock.
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

// `npm run bench` is plain `tsx bench/run.ts`: no --expose-gc on the command line, so turn it on
// here. The flag only takes effect for contexts created afterwards, hence the fresh context.
setFlagsFromString('--expose-gc');
const gcFn = runInNewContext('gc') as (opts?: { type: 'major' | 'minor' }) => void;

export function fullGc(): void {
  gcFn();
}

export interface Sample {
  wallMs: number;
  /** User + system CPU of the whole process (the exporting thread plus V8's helper threads). */
  cpuMs: number;
  peakRssMb: number;
  /** Peak RSS minus RSS at the start: what the run itself added (the workload is already in). */
  rssGrowthMb: number;
  /** Longest delay of a 1 ms timer during the run, i.e. the longest synchronous stretch. */
  maxStallMs: number;
  /** Time in GC pauses on this thread during the run (part of wallMs). */
  gcMs: number;
  /**
   * Of the longest gap between the sampler's 5 ms ticks (the longest stall, give or take a tick),
   * the time the main thread spent runnable but waiting for a core (Linux schedstat; NaN where
   * there is none): on a shared 2-core machine a stall can be mostly the scheduler's.
   */
  stallWaitMs: number;
  /**
   * Of the same gap, the time the main thread spent on a core. What is neither this nor the wait
   * the thread spent blocked: sleeping on a lock or a condition (e.g. V8 waiting for its helper
   * threads outside a GC pause), or in a page fault the VM makes slow.
   */
  stallRunMs: number;
  /**
   * The longest single GC pause on this thread during the run (0 when none was recorded): beside
   * a stall, it tells a stall the collector made from one the scheduler or the code made.
   */
  maxGcPauseMs: number;
  /**
   * Minor page faults during the longest gap between the sampler's ticks, and during the whole
   * run. On this VM a fault costs ~15–20 µs (docs/PERFORMANCE.md, "Session 10"): 2,500 of them
   * are a 50 ms stall that is neither the collector's nor the scheduler's.
   */
  stallFaults: number;
  minorFaults: number;
}

/**
 * The main thread's time so far, in ns (`/proc/thread-self/schedstat`): on a core, and runnable
 * but waiting for one. Undefined off Linux.
 */
function schedReader(): (() => { run: number; wait: number }) | undefined {
  const read = (): { run: number; wait: number } => {
    const f = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    return { run: Number(f[0]), wait: Number(f[1]) };
  };
  try {
    return Number.isFinite(read().wait) ? read : undefined;
  } catch {
    return undefined;
  }
}
const sched = schedReader();

/**
 * `beforeClock` runs after the full collection and before the clock starts: what must happen
 * right before a run but must not be timed (the bench's `--cpu-profile` starts V8's profiler
 * there, which logs every compiled function first: ~0.2 s with the bench's heap).
 */
export async function measure(run: () => Promise<void>, beforeClock?: () => Promise<void>): Promise<Sample> {
  fullGc();
  await beforeClock?.();
  /** The timed stretch (performance.now()), for the GC entries and the sampler. */
  let t0 = Infinity;
  let t1 = Infinity;
  const rss0 = process.memoryUsage.rss();
  let peakRss = rss0;
  let lastTick = performance.now();
  let lastSched = sched?.() ?? { run: NaN, wait: NaN };
  let worstGap = 0;
  let stallWaitMs = NaN;
  let stallRunMs = NaN;
  let lastFaults = process.resourceUsage().minorPageFault;
  let stallFaults = 0;
  let ticks = 0;
  const sampler = setInterval(() => {
    // RSS every 4th tick (20 ms): a read costs ~0.25 ms here (a /proc file), and at every tick
    // the sampler took ~6 % of a timed run (a --cpu-profile of this exporter's rounds).
    if ((ticks++ & 3) === 0) {
      const r = process.memoryUsage.rss();
      if (r > peakRss) peakRss = r;
    }
    const now = performance.now();
    const now2 = sched?.() ?? { run: NaN, wait: NaN };
    const faults = process.resourceUsage().minorPageFault;
    if (now - lastTick > worstGap && now >= t0 && lastTick < t1) {
      worstGap = now - lastTick;
      stallWaitMs = (now2.wait - lastSched.wait) / 1e6;
      stallRunMs = (now2.run - lastSched.run) / 1e6;
      stallFaults = faults - lastFaults;
    }
    lastTick = now;
    lastSched = now2;
    lastFaults = faults;
  }, 5);
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  // The histogram records intervals between its timer's ticks, from the first tick on (reset()
  // starts over): a run that blocks at once would go unseen. Let it tick before the clock starts;
  // the ~1 ms intervals it records meanwhile cannot raise the max.
  await sleep(3);
  let gcMs = 0;
  let maxGcPauseMs = 0;
  const count = (entries: readonly PerformanceEntry[]): void => {
    for (const e of entries) {
      if (e.startTime >= t0 && e.startTime < t1) {
        gcMs += e.duration;
        if (e.duration > maxGcPauseMs) maxGcPauseMs = e.duration;
      }
    }
  };
  const gcs = new PerformanceObserver((list) => count(list.getEntries()));
  gcs.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  const faults0 = process.resourceUsage().minorPageFault;
  t0 = performance.now();
  await run();
  t1 = performance.now();
  const minorFaults = process.resourceUsage().minorPageFault - faults0;
  const wallMs = t1 - t0;
  const cpu = process.cpuUsage(cpu0);
  // Likewise a run that ends with a block needs one more tick for that interval to be recorded.
  await sleep(2);
  eld.disable();
  count(gcs.takeRecords());
  gcs.disconnect();
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return {
    wallMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMb: peakRss / 2 ** 20,
    rssGrowthMb: (peakRss - rss0) / 2 ** 20,
    // The histogram records how late the 1 ms timer fired; a run shorter than one tick records 0.
    maxStallMs: eld.count > 0 ? eld.max / 1e6 : 0,
    gcMs,
    stallWaitMs,
    stallRunMs,
    maxGcPauseMs,
    stallFaults,
    minorFaults,
  };
}

/**
 * A stall figure, the part of it the main thread spent waiting for a core, and the longest GC
 * pause of the same run: they travel together.
 */
export type Stall = Pick<Sample, 'maxStallMs' | 'stallWaitMs' | 'stallRunMs' | 'maxGcPauseMs' | 'stallFaults'>;

/** Only the stall's figures of `s` (a row keeps them, not the whole sample). */
export function stallOf(s: Stall): Stall {
  return { maxStallMs: s.maxStallMs, stallWaitMs: s.stallWaitMs, stallRunMs: s.stallRunMs, maxGcPauseMs: s.maxGcPauseMs, stallFaults: s.stallFaults };
}

/** The one with the longest stall (the first of equals); `xs` is not empty. */
export function worstStall<T extends Stall>(xs: readonly T[]): T {
  return xs.reduce((w, x) => (x.maxStallMs > w.maxStallMs ? x : w));
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * What one minor page fault costs on this machine, in µs: a fresh Node process touches 64 MiB
 * of new memory one byte per 4 KiB page. The OTLP exporter and the floor fault about 0.3 times
 * per event, this exporter about 0.01, so this cost moves the ratios between them: 15–20 µs on
 * the VMs of 2026-12-02 (about 5 µs of their 12–20 µs per span), 2 µs on that of 2026-12-03.
 * Median of three processes; undefined where the process cannot count its faults.
 */
export function pageFaultCostUs(): number | undefined {
  const script =
    'const r0=process.resourceUsage().minorPageFault,t0=process.hrtime.bigint();' +
    'const b=Buffer.allocUnsafeSlow(64*1024*1024);for(let i=0;i<b.length;i+=4096)b[i]=1;' +
    'const ns=Number(process.hrtime.bigint()-t0),f=process.resourceUsage().minorPageFault-r0;' +
    'process.stdout.write(String(f>1000?ns/1000/f:-1))';
  const costs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    const us = Number(r.stdout);
    if (r.status === 0 && us > 0) costs.push(us);
  }
  return costs.length > 0 ? median(costs) : undefined;
}
