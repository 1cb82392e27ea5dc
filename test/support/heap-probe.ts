// Loaded into a serve child (`--expose-gc --import heap-probe.ts`) by tests that need its memory:
// on SIGUSR2 it collects garbage (twice: weak references and finalizers need a second pass),
// writes a heap snapshot when the test asked for one (a file `want-snapshot` in HEAP_PROBE_DIR),
// and writes one line
// `heap-probe {...}` to stderr: heap and resident size before and after the collection, and the
// snapshot's path. The snapshot is written from C++ straight to the file and read by the test,
// not parsed here: parsing it would grow this process's heap and RSS, the figures measured.
// Only tests load it; the bin never does.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
let n = 0;

process.on('SIGUSR2', () => {
  // Before the collection too: what the process holds when left alone (garbage included).
  const before = process.memoryUsage();
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const dir = process.env.HEAP_PROBE_DIR;
  let snapshot = '';
  if (dir && existsSync(join(dir, 'want-snapshot'))) {
    rmSync(join(dir, 'want-snapshot'));
    snapshot = writeHeapSnapshot(join(dir, `serve-${process.pid}-${++n}.heapsnapshot`));
  }
  const line = { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, heapUsedBeforeGc: before.heapUsed, rssBeforeGc: before.rss, gc: gc ? 1 : 0, snapshot };
  process.stderr.write(`heap-probe ${JSON.stringify(line)}\n`);
});
