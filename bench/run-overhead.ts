// `run`'s start-up and exit cost alone (the run-overhead figure of bench/live.ts), with A/B: each
// `--cli FILE` is a built bin (dist/cli.cjs, or a copy of an older dist/ under .bench-out/), run
// around `true` against a healthy loopback intake; `true` alone and `node -e 0` are measured in the
// same rounds, interleaved, so that load drifts touch every row alike. Wall time, medians; and,
// for the Node processes, the CPU time they used (all threads, from a preloaded module that
// reads process.cpuUsage() at exit), which a loaded machine disturbs far less than wall time.
//   npx tsx bench/run-overhead.ts [--runs 15] [--cli dist/cli.cjs --cli .bench-out/dist-before/cli.cjs] [--no-telemetry] [--command 'sleep 0.3']
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BUILT_CLI } from '../testkit/built-cli.js';
import { startIntake } from '../testkit/intake.js';
import { median } from './measure.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    cli: { type: 'string', multiple: true },
    'no-telemetry': { type: 'boolean', default: false },
    // Another command than `true`, e.g. --command 'sleep 0.3': what `run` adds around a command
    // that lasts (loading while it runs) rather than around one that ends at once.
    command: { type: 'string', default: 'true' },
  },
});
const runs = Number(values.runs);
const [cmd, ...cmdArgs] = values.command.split(' ').filter((w) => w !== '') as [string, ...string[]];
const clis = (values.cli ?? [BUILT_CLI]).map((c) => resolve(c));

// Preloaded with --require (a CommonJS file): an --import of a data: URL would start Node's ESM
// loader in every measured process, a CommonJS bin's included, and hide what it saves.
const CPU_AT_EXIT = join(mkdtempSync(join(tmpdir(), 'run-overhead-')), 'cpu-at-exit.cjs');
writeFileSync(CPU_AT_EXIT, "process.on('exit',()=>{const c=process.cpuUsage();process.stderr.write('\\n@cpu '+((c.user+c.system)/1000)+'\\n')})\n");

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; cpu: number; code: number | null }> {
  const t0 = performance.now();
  const node = cmd === process.execPath;
  return new Promise((done) => {
    const child = spawn(cmd, node ? ['--require', CPU_AT_EXIT, ...args] : args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += String(c)));
    child.on('close', (code) => {
      const m = /@cpu ([\d.]+)/.exec(err);
      const rest = err.replace(/\n?@cpu [\d.]+\n/, '');
      if (rest.trim() !== '') process.stderr.write(rest);
      done({ ms: performance.now() - t0, cpu: m ? Number(m[1]) : NaN, code });
    });
    child.on('error', () => done({ ms: NaN, cpu: NaN, code: null }));
  });
}

const intake = await startIntake({ record: false });
const env: NodeJS.ProcessEnv = { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' };
for (const k of Object.keys(env)) if (k.startsWith('DD_') || k === 'TRACEPARENT') delete env[k];
const argsFor = (cli: string): string[] =>
  values['no-telemetry'] ? [cli, 'run', '--', cmd, ...cmdArgs] : [cli, 'run', '--endpoint', intake.endpoint, '--url', 'https://ci.example/bench', '--', cmd, ...cmdArgs];

// The command alone: the overhead's reference.
const alone = values.command;
const rows = new Map<string, number[]>([[alone, []], ['node -e 0', []], ...clis.map((c) => [c, []] as [string, number[]])]);
const cpu = new Map<string, number[]>([...rows.keys()].map((k) => [k, []]));
for (const c of clis) await timed(process.execPath, argsFor(c), env); // file cache
for (let i = 0; i < runs; i++) {
  // Rotate the order so that no row always follows the same one.
  const order = [...clis.map((c) => () => timed(process.execPath, argsFor(c), env).then((r) => ({ key: c, ...r }))),
    () => timed(cmd, cmdArgs, env).then((r) => ({ key: alone, ...r })),
    () => timed(process.execPath, ['-e', '0'], env).then((r) => ({ key: 'node -e 0', ...r }))];
  for (let k = 0; k < order.length; k++) {
    const r = await order[(k + i) % order.length]!();
    if (r.code !== 0) console.log(`note: ${r.key} exited ${r.code}`);
    rows.get(r.key)!.push(r.ms);
    cpu.get(r.key)!.push(r.cpu);
  }
}
const accepted = intake.acceptedCount();
await intake.close();
rmSync(dirname(CPU_AT_EXIT), { recursive: true, force: true });
const trueMs = median(rows.get(alone)!);
console.log(`${runs} rounds, load ${(await import('node:os')).loadavg()[0]!.toFixed(2)}; intake accepted ${accepted} events`);
// Every process sends at least its finished pipeline event: fewer accepted means some row's
// events were refused (an invalid body is answered at once), and its figure is not that of a
// program doing run's job.
const expected = values['no-telemetry'] ? 0 : clis.length * (runs + 1);
if (accepted < expected) console.log(`note: the intake accepted ${accepted} events, at least ${expected} expected: a row's events were refused`);
for (const [key, ms] of rows) {
  const m = median(ms);
  const c = median(cpu.get(key)!);
  console.log(`${key.padEnd(50)} median ${m.toFixed(0).padStart(4)} ms  overhead ${(m - trueMs).toFixed(0).padStart(4)} ms  (min ${Math.min(...ms).toFixed(0)})  CPU ${Number.isNaN(c) ? '-' : `${c.toFixed(0)} ms`}`);
}
