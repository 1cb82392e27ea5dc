// One synthetic pipeline through the exporter's path, on throwaway parts, a turn after
// construction. V8 compiles a function the first time it runs, and the path from export() to a
// request body (filing, the hierarchy, mapping, validation, serialization, the body) is a few
// hundred functions. In a short-lived CI process that path first runs at shutdown, after the
// last span: its compile then lies between the build's end and the process's exit (about 10 ms
// for a 100-span pipeline on a 2-core machine, more than the OTLP exporter's whole shutdown).
// Run once while the build goes on, the compiled code is there when the real spans come.
// (delivery/parser-warm-up.ts does the same for undici's HTTP parser.)
//
// Nothing of it is sent, counted or reported: its own Diagnostics (silent), its own store and
// EventBuilder (no environment detection), its events dropped. Module-level memos it touches
// (serialization's last shared members and envelope, the time strings' cache) are keyed by the
// values they hold, so the exporter's own events cannot pick up a synthetic value.
import { SpanStatusCode, type Attributes, type HrTime } from '@opentelemetry/api';
import { encodeBody } from './delivery/batcher.js';
import type { ReadyEvent } from './delivery/types.js';
import { Diagnostics } from './diagnostics.js';
import { EventBuilder } from './events.js';
import { PendingStore, type StoreLevel } from './hierarchy/pending-store.js';
import type { SpanData } from './mapping/transform.js';
import type { ResolvedOptions } from './options.js';
import { admitSpan } from './span-shape.js';

let done = false;

/** @internal Pipelines the warm-up has run in this process (read by its test). */
export let pipelinesWarmed = 0;

/**
 * Pipelines run through the path, one per turn of the event loop (the first, whose code is not
 * compiled yet, takes a few milliseconds; the others a fraction of one). One pipeline compiles
 * the code, but V8 also optimises what runs often, on a background thread that a process waits
 * for before it exits: with a hundred spans behind it before the build's own come, that
 * happens during the build too. Measured (bench/short-ab.ts, 40 fresh processes each, last span
 * end → exit): 1.17× the OTLP exporter without warm-up, 1.08× with one pipeline, 1.01× with 20.
 */
const PIPELINES = 20;

/** Once per process, from the next turn on; never throws, never keeps the process alive. */
export function warmUpBuildPath(options: ResolvedOptions): void {
  if (done) return;
  done = true;
  let left = PIPELINES;
  const next = (): void => {
    try {
      warmUpBody(options);
      pipelinesWarmed++;
      if (--left > 0) setImmediate(next).unref();
    } catch {
      // Only a missed head start: the exporter's own path is not touched by it.
    }
  };
  try {
    setImmediate(next).unref();
  } catch {
    // As above.
  }
}

/** For a process that builds its events right away and then exits (the `run` command). */
export function skipBuildWarmUp(): void {
  done = true;
}

const TRACE = '5741524d2d55502d5741524d2d555021';
const RESOURCE = { attributes: { 'service.name': 'warm-up' } as Attributes };

function span(id: string, parent: string | undefined, name: string, attributes: Attributes, start: HrTime, end: HrTime, code = SpanStatusCode.UNSET): SpanData {
  return {
    name,
    spanContext: () => ({ traceId: TRACE, spanId: id, traceFlags: 1 }),
    parentSpanContext: parent === undefined ? undefined : { traceId: TRACE, spanId: parent, traceFlags: 1 },
    startTime: start,
    endTime: end,
    status: code === SpanStatusCode.ERROR ? { code, message: 'warm-up' } : { code },
    attributes,
    events: [],
    resource: RESOURCE,
  } as unknown as SpanData;
}

/** @internal The warm-up itself, synchronous: the body it would send (exported for its test). */
export function warmUpBody(options: ResolvedOptions): Buffer | undefined {
  const diagnostics = new Diagnostics(() => undefined);
  const events = new EventBuilder({ ...options, detectEnvironment: false }, diagnostics);
  const out: ReadyEvent[] = [];
  const now = Date.now();
  const store = new PendingStore<StoreLevel>(
    { maxPendingSpans: 100, maxRememberedSpans: 100, maxAgeMs: options.maxEventAgeMs },
    {
      resolve: (s, level, inherited, children) => events.build(s, level, inherited, now, out, children),
      evict: (s, level, reason) => events.evicted(s, level, reason),
      cycle: (s, level) => events.cycle(s, level),
    },
    true,
  );
  const sec = Math.floor(now / 1000) - 60;
  const at = (s: number): HrTime => [sec + s, 500_000_000];
  // Children end before their parents, as in a build: steps and the job are held, then resolved
  // when the pipeline arrives, the order in which a BatchSpanProcessor hands them over.
  const spans = [
    span('0000000000000004', '0000000000000003', 'compile', { 'ci.level': 'step', 'ci.status': 'success' }, at(2), at(3)),
    span('0000000000000005', '0000000000000003', 'test', { 'ci.level': 'step' }, at(3), at(4), SpanStatusCode.ERROR),
    span('0000000000000003', '0000000000000002', 'build', { 'ci.level': 'job', 'ci.url': 'https://ci.invalid/job/1' }, at(1), at(5)),
    span('0000000000000002', '0000000000000001', 'main', { 'ci.level': 'stage' }, at(1), at(5)),
    span('0000000000000001', undefined, 'warm-up', { 'ci.level': 'pipeline', 'ci.url': 'https://ci.invalid/1', 'ci.git.repository_url': 'https://git.invalid/r.git', 'ci.git.sha': '0123456789abcdef0123456789abcdef01234567' }, at(0), at(6)),
  ];
  for (const raw of spans) {
    const s = admitSpan(raw, diagnostics);
    if (s) store.add(s, events.levelOf(s), now);
  }
  while (store.drain(100));
  return out.length > 0 ? encodeBody(out) : undefined;
}
