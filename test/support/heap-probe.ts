// Loaded into a serve child (`--expose-gc --import heap-probe.ts`) by tests that need its memory:
// on SIGUSR2 it collects garbage (twice: weak references and finalizers need a second pass) and
// writes one line `heap-probe {...}` to stderr with the heap and resident size before and after.
// Only tests load it; the bin never does.
const gc = (globalThis as { gc?: () => void }).gc;
process.on('SIGUSR2', () => {
  // Before the collection too: what the process holds when left alone (garbage included).
  const before = process.memoryUsage();
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const line = { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, heapUsedBeforeGc: before.heapUsed, rssBeforeGc: before.rss, gc: gc ? 1 : 0 };
  process.stderr.write(`heap-probe ${JSON.stringify(line)}\n`);
});
