// Whether hiding the intake's answer behind the building of events pays on this machine. A
// stand-in exporter builds 512 events per call (JSON.stringify of the bench's hand events, three
// times over, which allocates as building does), then POSTs them with undici to the bench's
// sink, and calls back once answered, four ways, interleaved:
//
//   one body     build everything, then one request (what this exporter and OTLP do);
//   two bodies   the first half's request goes out while the second half is built;
//   streamed     one request whose body's first half is written while the second is built;
//   pipelined    the next call is built while this call's request is answered: the bound of any
//                overlap, and what the callback contract forbids (export() calls back once its
//                events are delivered, so that forceFlush() means "delivered").
//
//   npx tsx bench/overlap.ts [--rounds 12]
//
// Prints events/s per mode and each mode's ratio to "one body", paired per round.
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Pool } from 'undici';
import { batches, generate, TYPICAL } from './workload.js';
import { handMap, type HandEvent } from './mapping.js';
import { isSinkChild, startSink } from './sink.js';
import { BSP_BATCH, post as postTo } from './contenders.js';
import { median } from './measure.js';

const MODES = ['one body', 'two bodies', 'streamed', 'pipelined'] as const;
type Mode = (typeof MODES)[number];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = Number(argv.includes('--rounds') ? argv[argv.indexOf('--rounds') + 1] : 12);
  const events = handMap(generate(300, TYPICAL, 1).spans);
  const calls = batches(events, BSP_BATCH);
  const sink = await startSink();
  const { origin, pathname } = new URL(sink.pipelineUrl);
  const pool = new Pool(origin, { connections: 4, pipelining: 1 });
  let kept = 0;
  /** The events' JSON, comma-separated; the extra stringify passes stand for mapping's work. */
  const build = (c: readonly HandEvent[]): string => {
    for (let k = 0; k < 2; k++) for (const e of c) kept += JSON.stringify(e).length;
    return c.map((e) => JSON.stringify(e)).join(',');
  };
  const post = (body: Buffer | PassThrough): Promise<void> => postTo(pool, pathname, body, 'overlap');
  const whole = (json: string): Buffer => Buffer.from(`{"data":[${json}]}`);

  const runs: Record<Mode, () => Promise<void>> = {
    async 'one body'() {
      for (const c of calls) {
        await post(whole(build(c)));
        await tick();
      }
    },
    async 'two bodies'() {
      for (const c of calls) {
        const h = c.length >> 1;
        const first = post(whole(build(c.slice(0, h))));
        await tick(); // the first request gets written before the second half is built
        const second = whole(build(c.slice(h)));
        await first;
        await post(second);
        await tick();
      }
    },
    async streamed() {
      for (const c of calls) {
        const h = c.length >> 1;
        const body = new PassThrough();
        const answered = post(body);
        body.write(`{"data":[${build(c.slice(0, h))},`);
        // Turns until undici has taken the first half off the stream (into the socket).
        for (let t = 0; t < 20 && (t < 2 || body.readableLength > 0); t++) await tick();
        body.end(`${build(c.slice(h))}]}`);
        await answered;
        await tick();
      }
    },
    async pipelined() {
      let previous: Promise<void> = Promise.resolve();
      for (const c of calls) {
        const body = whole(build(c));
        await previous;
        previous = post(body);
        await tick();
      }
      await previous;
    },
  };

  const rates = Object.fromEntries(MODES.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  const ratios = Object.fromEntries(MODES.map((m) => [m, [] as number[]])) as Record<Mode, number[]>;
  for (let r = -1; r < rounds; r++) {
    const order = MODES.map((_, k) => MODES[(k + Math.max(0, r)) % MODES.length]!);
    const round = {} as Record<Mode, number>;
    for (const m of order) {
      const t0 = performance.now();
      await runs[m]();
      round[m] = events.length / (performance.now() - t0);
    }
    if (r < 0) continue;
    for (const m of MODES) {
      rates[m].push(round[m] * 1000);
      ratios[m].push(round[m] / round['one body']);
    }
  }
  sink.close();
  await pool.close();
  console.log(`${events.length} events in ${calls.length} calls of ${BSP_BATCH}; medians of ${rounds} interleaved rounds`);
  for (const m of MODES) {
    console.log(`${m.padEnd(12)} ${Math.round(median(rates[m])).toLocaleString('en-US').padStart(8)} events/s  ${median(ratios[m]).toFixed(2)}× one body  (ratios ${[...ratios[m]].sort((a, b) => a - b).map((x) => x.toFixed(2)).join(' ')})`);
  }
  if (kept < 0) console.log(kept); // keeps the stand-in work from being optimized away
}

if (!isSinkChild) void main();
