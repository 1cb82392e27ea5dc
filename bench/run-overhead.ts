// `run`'s start-up and exit cost alone (the run-overhead figure of bench/live.ts), with A/B: each
// `--cli FILE` is a built bin (dist/cli.js, or a copy of an older dist/ under .bench-out/), run
// around `true` against a healthy loopback intake; `true` alone and `node -e 0` are measured in the
// same rounds, interleaved, so that load drifts touch every row alike. Wall time, medians.
//   npx tsx bench/run-overhead.ts [--runs 15] [--cli dist/cli.js --cli .bench-out/dist-before/cli.js] [--no-telemetry]
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BUILT_CLI } from '../testkit/built-cli.js';
import { startIntake } from '../testkit/intake.js';
import { median } from './measure.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    cli: { type: 'string', multiple: true },
    'no-telemetry': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const clis = (values.cli ?? [BUILT_CLI]).map((c) => resolve(c));

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; code: number | null }> {
  const t0 = performance.now();
  return new Promise((done) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('close', (code) => done({ ms: performance.now() - t0, code }));
    child.on('error', () => done({ ms: NaN, code: null }));
  });
}

const intake = await startIntake({ record: false });
const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' };
for (const k of Object.keys(env)) if (k.startsWith('DD_') || k === 'TRACEPARENT') delete env[k];
const argsFor = (cli: string): string[] =>
  values['no-telemetry'] ? [cli, 'run', '--', 'true'] : [cli, 'run', '--endpoint', intake.endpoint, '--url', 'https://ci.example/bench', '--', 'true'];

const rows = new Map<string, number[]>([['true', []], ['node -e 0', []], ...clis.map((c) => [c, []] as [string, number[]])]);
for (const c of clis) await timed(process.execPath, argsFor(c), env); // file cache
for (let i = 0; i < runs; i++) {
  // Rotate the order so that no row always follows the same one.
  const order = [...clis.map((c) => () => timed(process.execPath, argsFor(c), env).then((r) => ({ key: c, ...r }))),
    () => timed('true', [], env).then((r) => ({ key: 'true', ...r })),
    () => timed(process.execPath, ['-e', '0'], env).then((r) => ({ key: 'node -e 0', ...r }))];
  for (let k = 0; k < order.length; k++) {
    const r = await order[(k + i) % order.length]!();
    if (r.code !== 0) console.log(`note: ${r.key} exited ${r.code}`);
    rows.get(r.key)!.push(r.ms);
  }
}
const accepted = intake.acceptedCount();
await intake.close();
const trueMs = median(rows.get('true')!);
console.log(`${runs} rounds, load ${(await import('node:os')).loadavg()[0]!.toFixed(2)}; intake accepted ${accepted} events`);
for (const [key, ms] of rows) {
  const m = median(ms);
  console.log(`${key.padEnd(50)} median ${m.toFixed(0).padStart(4)} ms  overhead vs true ${(m - trueMs).toFixed(0).padStart(4)} ms  (min ${Math.min(...ms).toFixed(0)})`);
}
