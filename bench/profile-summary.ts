// Reads a V8 .cpuprofile and prints where the time went: self time by function, self time by
// file, and total (inclusive) time of this package's own functions.
//
//   npx tsx bench/run.ts --only exporter --no-scale --no-serve --no-process --cpu-profile .bench-out/prof
//   npx tsx bench/profile-summary.ts .bench-out/prof/exporter-round3.cpuprofile [--top 40] [--filter src/] [--lines fn]
// Under tsx every function sits on line 1 (its transform drops line structure); for --lines,
// profile an esbuild bundle instead (see docs/PERFORMANCE.md, "Profiling").
import { readFileSync } from 'node:fs';

interface Frame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: Frame;
  children?: number[];
  hitCount?: number;
  positionTicks?: Array<{ line: number; ticks: number }>;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function short(url: string): string {
  const i = url.indexOf('/node_modules/');
  if (i >= 0) return url.slice(i + 1);
  const m = url.match(/\/(\.bench-out|src|bench|testkit)\/.*/);
  return m ? m[0].slice(1) : url.replace(/^file:\/\//, '') || '(native)';
}

function main(): void {
  const argv = process.argv.slice(2);
  const top = Number(argv[argv.indexOf('--top') + 1]) || 30;
  const filterAt = argv.indexOf('--filter');
  const filter = filterAt >= 0 ? argv[filterAt + 1] : 'src/';
  const linesAt = argv.indexOf('--lines');
  const linesOf = linesAt >= 0 ? argv[linesAt + 1] : undefined;
  const files = argv.filter((a) => a.endsWith('.cpuprofile'));
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const selfUs = new Map<number, number>();
    p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    const total = p.endTime - p.startTime;
    const idle = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, t]) => a + t, 0);
    const busy = total - idle;

    const key = (f: Frame): string => `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
    const selfBy = new Map<string, number>();
    const fileBy = new Map<string, number>();
    const inclBy = new Map<string, number>();
    for (const [id, t] of selfUs) {
      const f = (byId.get(id) as ProfileNode).callFrame;
      selfBy.set(key(f), (selfBy.get(key(f)) ?? 0) + t);
      const fk = short(f.url);
      fileBy.set(fk, (fileBy.get(fk) ?? 0) + t);
      // Inclusive: charge each distinct matching frame on the stack once.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const cf = (byId.get(cur) as ProfileNode).callFrame;
        if (!filter || !short(cf.url).startsWith(filter)) continue;
        const k = key(cf);
        if (seen.has(k)) continue;
        seen.add(k);
        inclBy.set(k, (inclBy.get(k) ?? 0) + t);
      }
    }
    const pct = (t: number): string => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
    const ms = (t: number): string => `${(t / 1000).toFixed(0).padStart(7)} ms`;
    const list = (title: string, m: Map<string, number>): void => {
      console.log(`\n${title}`);
      for (const [k, t] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(t)} ${pct(t)}  ${k}`);
    };
    console.log(`${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy)`);
    list('self time by function', selfBy);
    list('self time by file', fileBy);
    if (filter) list(`total time of functions in ${filter}`, inclBy);
    if (linesOf) {
      // Sample counts per source line of one function (all its call sites merged).
      const ticks = new Map<string, number>();
      for (const n of p.nodes) {
        if (n.callFrame.functionName !== linesOf) continue;
        for (const t of n.positionTicks ?? []) {
          const k = `${short(n.callFrame.url)}:${t.line}`;
          ticks.set(k, (ticks.get(k) ?? 0) + t.ticks);
        }
      }
      const sum = [...ticks.values()].reduce((a, b) => a + b, 0);
      console.log(`\nhot lines of ${linesOf} (${sum} samples)`);
      for (const [k, t] of [...ticks].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`${String(t).padStart(7)} ${((100 * t) / sum).toFixed(1).padStart(5)}%  ${k}`);
      }
    }
  }
}

main();
