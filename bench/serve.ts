// serve's figures: spans/s through `serve` (the bin, a child process) from a real OTLP/protobuf
// exporter to the sink, as a ratio to the same spans exported in process by this exporter
// (target ≥ 0.5×), and serve's RSS at rest and under that load. Interleaved per round, like
// the throughput table, so machine load drifts out of the ratio.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { driveExporter } from './contenders.js';
import type { ExporterFactory } from './exporter.js';
import { median } from './measure.js';
import type { Sink } from './sink.js';
import { generate, TYPICAL } from './workload.js';

export interface ServeResult {
  spans: number;
  rounds: number;
  /** Median spans/s in process and through serve. */
  inProcessPerSec: number;
  servePerSec: number;
  /** Median of the per-round ratios serve ÷ in process. */
  ratio: number;
  /** Every timed round: spans/s in process and through serve, and their ratio. */
  perRound: Array<{ inProcess: number; serve: number; ratio: number }>;
  /** Fresh bench processes (each with its own serve) the rounds came from. */
  processes: number;
  rssRestMb: number;
  rssPeakMb: number;
  /** How serve was run (the built bin, or the source through tsx). */
  binary: string;
}

const root = fileURLToPath(new URL('../', import.meta.url));

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function startServe(endpoint: string): Promise<{ child: ChildProcess; url: string; binary: string }> {
  // The built bin when there is one (what users run; tsx would add its own memory to the RSS).
  // BENCH_SERVE_BIN runs another build (an A/B against a copy of a baseline's dist/).
  const dist = process.env.BENCH_SERVE_BIN ?? `${root}dist/cli.js`;
  const binary = existsSync(dist) ? (process.env.BENCH_SERVE_BIN ?? 'dist/cli.js') : 'src/cli/bin.ts via tsx (run npm run build for the shipped bin)';
  return { ...(await spawnServe(existsSync(dist) ? [dist] : ['--import', 'tsx', `${root}src/cli/bin.ts`], endpoint)), binary };
}

/** `node <nodeArgs> serve` on a free port in front of `endpoint`; resolves once it says where it listens. */
export async function spawnServe(nodeArgs: string[], endpoint: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...nodeArgs, 'serve', '--port', '0', '--endpoint', endpoint, '--service', 'monorepo-build'], {
    env: { ...process.env, DD_API_KEY: 'bench-key', NO_PROXY: '127.0.0.1,localhost' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)\n/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code} before listening`)));
  });
  return { child, url };
}

export async function waitForEvents(sink: Sink, n: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const st = await sink.stats();
    if (st.events >= n) return;
    if (Date.now() > end) throw new Error(`serve bench: the sink counted ${st.events} of ${n} events (${JSON.stringify(st)})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function serveBench(make: ExporterFactory, sink: Sink, o: { quick: boolean; rounds: number; log: (line: string) => void }): Promise<ServeResult> {
  // 300 pipelines (33,600 spans): with 150 the in-process rate alone moved between 50 and 88 k
  // spans/s from run to run. bench/run.ts takes its rounds from several fresh processes.
  const pipelines = o.quick ? 40 : 300;
  // serve's one exporter lives across rounds and remembers the spans it resolved (a re-export
  // of the same span IDs is a duplicate to it): each round gets its own workload.
  const workloads = Array.from({ length: (o.quick ? 1 : o.rounds) + 1 }, (_, i) => generate(pipelines, TYPICAL, 7 + i).spans);
  const spans0 = workloads[0]!;
  const { child, url, binary } = await startServe(sink.pipelineUrl);
  const pid = child.pid!;
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rssRestMb = rssMb(pid);
    let rssPeakMb = rssRestMb;
    const inProc: number[] = [];
    const served: number[] = [];
    const ratios: number[] = [];
    // The first round is a warm-up.
    for (let round = 0; round < workloads.length; round++) {
      const spans = workloads[round]!;
      // In process.
      await sink.reset();
      const exporter = make(sink.pipelineUrl);
      let t = performance.now();
      await driveExporter(exporter, spans);
      await waitForEvents(sink, spans.length, 60_000);
      const inMs = performance.now() - t;
      await exporter.shutdown();
      // Through serve: the OTLP/protobuf exporter → serve → the sink, until the sink has all.
      await sink.reset();
      const otlp = new OTLPTraceExporter({ url: `${url}/v1/traces` });
      const sampler = setInterval(() => {
        const r = rssMb(pid);
        if (r > rssPeakMb) rssPeakMb = r;
      }, 20);
      t = performance.now();
      await driveExporter(otlp, spans);
      await waitForEvents(sink, spans.length, 120_000);
      const serveMs = performance.now() - t;
      clearInterval(sampler);
      await otlp.shutdown();
      const a = spans.length / (inMs / 1000);
      const b = spans.length / (serveMs / 1000);
      if (round === 0) {
        o.log(`serve warm-up: in process ${Math.round(a).toLocaleString('en-US')}/s, through serve ${Math.round(b).toLocaleString('en-US')}/s`);
        continue;
      }
      inProc.push(a);
      served.push(b);
      ratios.push(b / a);
      o.log(`  serve round ${round}: in process ${Math.round(a).toLocaleString('en-US')} spans/s, through serve ${Math.round(b).toLocaleString('en-US')} spans/s (${(b / a).toFixed(2)}×), serve RSS ${rssMb(pid).toFixed(0)} MB`);
    }
    const perRound = ratios.map((ratio, i) => ({ inProcess: inProc[i]!, serve: served[i]!, ratio }));
    return { spans: spans0.length, rounds: ratios.length, inProcessPerSec: median(inProc), servePerSec: median(served), ratio: median(ratios), perRound, processes: 1, rssRestMb, rssPeakMb, binary };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}
