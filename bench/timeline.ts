// Where one export() call's wall time goes, for this exporter and the OTLP/HTTP exporter, driven
// as the throughput bench drives them (512 spans per call, the next call once the callback
// came). Per call: filing (until export() returns), building (until the body is handed to
// delivery; for OTLP: until its request starts, serialization included), sealing (this exporter:
// delivery.send(), the body written), to request (delivery's worker until undici's request
// exists), the answer (request created → response headers: writing the body, the intake reading
// it, its answer), and the answer → the callback. Medians over the calls of interleaved rounds.
//
//   npx tsx bench/timeline.ts [--workload typical|git] [--rounds 7] [--src DIR]
//
// It wraps the exporter's delivery.send (a private field, reached at run time) and listens on
// undici's and node:http's diagnostics channels; it changes nothing in src/. The listeners cost a
// little: read the phases, not the events/s.
import { subscribe } from 'node:diagnostics_channel';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { generate, TYPICAL } from './workload.js';
import { isSinkChild, startSink } from './sink.js';
import { BSP_BATCH, driveExporter, warmWorkloadSpans, warmUp } from './contenders.js';
import { fullGc, median } from './measure.js';
import { loadExporterFrom } from './exporter.js';

/** Timestamps (performance.now) of the call being driven; reset per call. */
interface Marks {
  /** The previous call's callback (the driver's turn between calls). */
  previous: number;
  call: number;
  returned: number;
  /** This exporter: delivery.send() entered / returned (last of the call). */
  seal: number;
  sealed: number;
  /** Last request created during the call, and its response headers. */
  request: number;
  headers: number;
  callback: number;
  requests: number;
}

const PHASES = ['filing', 'building', 'sealing', 'to request', 'answer', 'to callback', 'whole call', 'between'] as const;
type Phase = (typeof PHASES)[number];

let current: Marks | undefined;
const now = (): number => performance.now();
/** A request of the call being driven starts (undici's, or node:http's for the OTLP exporter). */
const requestStarts = (): void => {
  if (current) {
    current.request = now();
    current.requests++;
  }
};
/** Its response headers arrived. */
const answered = (): void => {
  if (current) current.headers = now();
};
subscribe('undici:request:create', requestStarts);
subscribe('http.client.request.start', requestStarts);
subscribe('undici:request:headers', answered);
subscribe('http.client.response.finish', answered);

function phasesOf(m: Marks, ours: boolean): Record<Phase, number> {
  const built = ours ? m.seal : m.request;
  return {
    filing: m.returned - m.call,
    building: built - m.returned,
    sealing: ours ? m.sealed - m.seal : 0,
    'to request': ours ? m.request - m.sealed : 0,
    answer: m.headers - m.request,
    'to callback': m.callback - m.headers,
    'whole call': m.callback - m.call,
    between: m.previous > 0 ? m.call - m.previous : 0,
  };
}

/** The throughput bench's own driver (contenders.ts), with the marks taken around each call. */
async function drive(exporter: SpanExporter, spans: readonly ReadableSpan[], ours: boolean, out: Array<Record<Phase, number>>): Promise<number> {
  let requests = 0;
  let previous = 0;
  let m: Marks | undefined;
  await driveExporter(exporter, spans, {
    calling() {
      m = { previous, call: now(), returned: 0, seal: 0, sealed: 0, request: 0, headers: 0, callback: 0, requests: 0 };
      current = m;
    },
    returned() {
      m!.returned = now();
    },
    calledBack() {
      m!.callback = now();
      current = undefined;
      previous = m!.callback;
      requests += m!.requests;
      // A call whose events all went out with another call's body has no request of its own.
      if (m!.requests > 0 && (!ours || m!.seal > 0)) out.push(phasesOf(m!, ours));
    },
  });
  return requests;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const value = (name: string, d: string): string => (argv.includes(name) ? (argv[argv.indexOf(name) + 1] as string) : d);
  const rounds = Number(value('--rounds', '7'));
  const workload = value('--workload', 'typical');
  const w = generate(300, TYPICAL, 1, { gitOnResource: workload === 'git' });
  // The warm-ups' spans (contenders.ts, `warm`: why every timed run is warmed after the collection).
  const warmSpans = warmWorkloadSpans({ gitOnResource: workload === 'git' });
  const sink = await startSink();
  const make = await loadExporterFrom(value('--src', new URL('../src', import.meta.url).pathname));
  const contenders = [
    {
      name: 'this exporter',
      ours: true,
      make(): SpanExporter {
        const ex = make(sink.pipelineUrl);
        // Marks around delivery.send(): sealing is encoding the body (and admitting it).
        const delivery = (ex as unknown as { delivery: { send: (e: unknown[]) => Promise<boolean> } }).delivery;
        const send = delivery.send.bind(delivery);
        delivery.send = (events) => {
          const m = current;
          if (m) m.seal = now();
          const p = send(events);
          if (m) m.sealed = now();
          return p;
        };
        return ex;
      },
    },
    { name: 'OTLP/HTTP json', ours: false, make: (): SpanExporter => new OTLPTraceExporter({ url: sink.tracesUrl }) },
  ];
  const calls = contenders.map(() => [] as Array<Record<Phase, number>>);
  const rates = contenders.map(() => [] as number[]);
  const idle = contenders.map(() => [] as number[]);
  const reqs = contenders.map(() => 0);
  console.log(`load ${loadavg()[0]!.toFixed(1)}; workload ${workload}: ${w.spans.length} spans, ${Math.ceil(w.spans.length / BSP_BATCH)} export() calls per round`);
  for (let r = -1; r < rounds; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + Math.max(0, r)) % contenders.length;
      const c = contenders[i]!;
      const ex = c.make();
      fullGc();
      await warmUp({ warm: () => drive(ex, warmSpans, c.ours, []).then(() => undefined) });
      const into = r < 0 ? [] : calls[i]!;
      const elu0 = performance.eventLoopUtilization();
      const t0 = now();
      const n = await drive(ex, w.spans, c.ours, into);
      const ms = now() - t0;
      const elu = performance.eventLoopUtilization(elu0);
      await ex.shutdown();
      if (r < 0) continue;
      rates[i]!.push(w.spans.length / ms);
      idle[i]!.push(elu.idle);
      reqs[i] = n;
    }
  }
  sink.close();
  const col = (s: string, n: number): string => s.padStart(n);
  console.log(`\nper export() call (${BSP_BATCH} spans), mean ms over ${rounds} rounds (medians in brackets where they differ by > 10 %):`);
  console.log(`${'contender'.padEnd(16)}${PHASES.map((p) => col(p, 15)).join('')}${col('k spans/s', 11)}${col('idle ms/rnd', 13)}${col('requests', 10)}`);
  contenders.forEach((c, i) => {
    const cells = PHASES.map((p) => {
      const xs = calls[i]!.map((x) => x[p]);
      const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
      const med = median(xs);
      return col(Math.abs(mean - med) > 0.1 * mean ? `${mean.toFixed(2)} [${med.toFixed(2)}]` : mean.toFixed(2), 15);
    }).join('');
    console.log(`${c.name.padEnd(16)}${cells}${col(median(rates[i]!).toFixed(1), 11)}${col(median(idle[i]!).toFixed(0), 13)}${col(String(reqs[i]), 10)}`);
  });
  // The answer's spread: a long tail there is time neither exporter spends building.
  contenders.forEach((c, i) => {
    const xs = calls[i]!.map((x) => x.answer).sort((a, b) => a - b);
    const at = (q: number): string => (xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0).toFixed(2);
    console.log(`${c.name}: answer p10 ${at(0.1)}, p50 ${at(0.5)}, p90 ${at(0.9)}, p99 ${at(0.99)}, max ${at(1)} ms`);
  });
  // The budget "2× OTLP" leaves per call, and how much of it the answer alone takes.
  const meanOf = (i: number, p: Phase): number => calls[i]!.reduce((a, x) => a + x[p], 0) / Math.max(1, calls[i]!.length);
  const budget = (meanOf(1, 'whole call') + meanOf(1, 'between')) / 2;
  const wire = meanOf(0, 'answer') + meanOf(0, 'to callback') + meanOf(0, 'between');
  const spent = meanOf(0, 'filing') + meanOf(0, 'building') + meanOf(0, 'sealing') + meanOf(0, 'to request');
  console.log(
    `\n"2× OTLP" allows ${budget.toFixed(2)} ms per call; the answer, the callback and the turn between calls take ${wire.toFixed(2)} of it,` +
      ` which leaves ${(budget - wire).toFixed(2)} ms (${(((budget - wire) * 1000) / BSP_BATCH).toFixed(2)} µs per span) for filing, building, sealing and` +
      ` reaching the request; this exporter spends ${spent.toFixed(2)} ms (${((spent * 1000) / BSP_BATCH).toFixed(2)} µs per span).`,
  );
  console.log('OTLP: "building" is export() returning → its request starting (serialization); it has no sealing. "answer": request created → response headers.');
  process.exit(0);
}

if (!isSinkChild) void main();
