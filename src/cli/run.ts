// `datadog-ci-pipeline-exporter run [flags] -- <command> [args...]`: runs a command inside one CI
// span and sends it. The span goes through DatadogCIPipelineSpanProcessor (a pipeline or job is
// visible as running at once) and its lineage reaches the command's env (envForChildProcess), so
// a `run` inside the command, at any depth, through shells and scripts, lands under this one.
//
// The build comes first: stdio is inherited untouched, SIGINT/SIGTERM are forwarded, the exit
// code is the command's, and telemetry problems (no key, endpoint down, bad flag) cost one line
// on stderr and at most shutdownTimeoutMs, never the build.
//
// One span needs no SDK: it is a plain object shaped like a ReadableSpan, which keeps the bin's
// start-up small (the overhead of `run` around a trivial command is one of the bench's figures).
import { spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import { LEVELS, parseLevel, type Level } from '../mapping/fields.js';
import type { DatadogCIPipelineExporterOptions } from '../options.js';
import type { ReadableSpanLike } from '../otel-types.js';
import type { DatadogCIPipelineSpanProcessor } from '../processor.js';
import { exporterHelp, exporterOptionsFromFlags, exporterParseOptions } from './exporter-options.js';

// Loaded only when telemetry is on: without a key or an endpoint, `run` pays for none of it.
const loadTelemetry = async () => {
  // undici parses HTTP with a WebAssembly module. V8 compiles it twice, a quick baseline first and
  // optimised code in the background, and the process cannot exit before that background compile
  // is done (~200 ms here): `run` sends one or two requests, so the baseline is all it needs. Set
  // before undici is loaded; it only concerns WebAssembly, and this process is `run`'s own.
  setFlagsFromString('--liftoff-only');
  const [api, exporter, processor, propagation, warmUp, undici] = await Promise.all([
    import('@opentelemetry/api'),
    import('../exporter.js'),
    import('../processor.js'),
    import('../propagation.js'),
    import('../delivery/parser-warm-up.js'),
    import('../delivery/undici.js'),
  ]);
  // The same reason: no parser warm-up (a loopback server and request at start-up) for a process
  // whose first request goes out when it is about to exit anyway.
  warmUp.skipHttpParserWarmUp();
  return { api, exporter, processor, propagation, undici };
};

const NAME = 'datadog-ci-pipeline-exporter run';

const RUN_FLAGS = {
  level: { type: 'string' },
  name: { type: 'string' },
  url: { type: 'string' },
  attr: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export function help(): string {
  return [
    `usage: ${NAME} [flags] -- <command> [args...]`,
    ``,
    `Runs the command inside a CI span (a pipeline, stage, job or step event) and sends it to Datadog.`,
    `stdio is inherited, SIGINT/SIGTERM are forwarded, and the exit code is the command's (signal n → 128+n,`,
    `not found → 127). Nested runs (in the command, its scripts, their children) land under this span.`,
    ``,
    `span flags:`,
    `  --level <pipeline|stage|job|step>  default: pipeline with no parent run; job under a pipeline or stage; step under a job or step`,
    `  --name <value>                     default: the command line`,
    `  --url <value>                      ci.url: the link to this build or job in your CI (required by Datadog for pipelines and jobs)`,
    `  --attr <ci.key=value>              any ci.* attribute, e.g. --attr ci.git.branch=main (repeatable)`,
    `  -h, --help                         print this help`,
    ``,
    `exporter flags (the API key comes from DD_API_KEY or --api-key-file, never a flag value):`,
    exporterHelp(),
    `  (env DD_CI_PIPELINE_SERVICE and DD_CI_PIPELINE_PROVIDER_NAME stand for --service and --provider-name)`,
    ``,
    `Without an API key or an endpoint, the command runs without telemetry (one line on stderr).`,
  ].join('\n');
}

const say = (line: string): void => {
  process.stderr.write(`[${NAME}] ${line}\n`);
};

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RUN_FLAGS & ReturnType<typeof exporterParseOptions>; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: { ...exporterParseOptions(), ...RUN_FLAGS }, allowPositionals: true, strict: true });
  } catch (err) {
    say(`${err instanceof Error ? err.message : String(err)}. Put the command after --, e.g. run --level job -- make -j4`);
    return 2;
  }
  const values = parsed.values as Record<string, string | boolean | Array<string | boolean> | undefined>;
  if (values.help === true) {
    process.stdout.write(`${help()}\n`);
    return 0;
  }
  const [command, ...args] = parsed.positionals;
  if (command === undefined) {
    say(`no command given.\n${help()}`);
    return 2;
  }
  let telemetry: Telemetry | undefined;
  try {
    telemetry = await setUp(values, env, command, args);
  } catch (err) {
    say(`telemetry could not start (${err instanceof Error ? err.message : String(err)}); running the command without it.`);
  }
  return runCommand(command, args, env, telemetry);
}

interface Telemetry {
  span: ReadableSpanLike & { spanContext(): SpanContext };
  /** The processor the span ends in: `lineage`, or `running` once it has sent the running event. */
  processor: DatadogCIPipelineSpanProcessor;
  /** Learned the span at its start (for the command's env), sends no running event. */
  lineage: DatadogCIPipelineSpanProcessor;
  /**
   * For a pipeline or job: sends the running event, once the exporter can send (undici loaded) and
   * only if the command is still running then. A command that ended before (`true`, a command not
   * found) gets none: its finished event, which replaces a running one, goes out in the same breath.
   */
  running: { ready: Promise<unknown>; start: () => DatadogCIPipelineSpanProcessor } | undefined;
  timeoutMs: number;
  /** The env entries for the command (envForChildProcess). */
  childEnv: Record<string, string>;
}

const SPAN_ERROR = 2; // SpanStatusCode.ERROR
const SPAN_UNSET = 0; // SpanStatusCode.UNSET
const SAMPLED = 1; // TraceFlags.SAMPLED

/** The span and the processor, or undefined when telemetry is off (said in one line). */
async function setUp(values: Record<string, unknown>, env: NodeJS.ProcessEnv, command: string, args: string[]): Promise<Telemetry | undefined> {
  const flags = exporterOptionsFromFlags(values as Parameters<typeof exporterOptionsFromFlags>[0]);
  if (!flags.ok) {
    say(`${flags.message}; running the command without telemetry.`);
    return undefined;
  }
  const options: DatadogCIPipelineExporterOptions = { ...flags.options };
  options.service ??= nonEmpty(env.DD_CI_PIPELINE_SERVICE);
  options.providerName ??= nonEmpty(env.DD_CI_PIPELINE_PROVIDER_NAME);
  if (options.apiKey === undefined && nonEmpty(env.DD_API_KEY) === undefined && options.endpoint === undefined && nonEmpty(env.DD_CI_PIPELINE_ENDPOINT) === undefined) {
    say('no Datadog API key (DD_API_KEY or --api-key-file) and no --endpoint: running the command without telemetry.');
    return undefined;
  }

  const { api, exporter: { DatadogCIPipelineExporter }, processor: { DatadogCIPipelineSpanProcessor }, propagation, undici } = await loadTelemetry();
  const parent = propagation.parentFromEnv(env);
  let level: Level = parent.parentLevel === undefined ? 'pipeline' : parent.parentLevel === 'job' || parent.parentLevel === 'step' ? 'step' : 'job';
  const askedLevel = values.level as string | undefined;
  if (askedLevel !== undefined) {
    const asked = parseLevel(askedLevel);
    if (asked) level = asked;
    else say(`--level ${JSON.stringify(askedLevel).slice(0, 60)} is not one of ${LEVELS.join(', ')}; using ${level}.`);
  }
  const attributes: Attributes = { ...parent.attributes };
  for (const a of (values.attr as string[] | undefined) ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) {
      say(`--attr ${JSON.stringify(a).slice(0, 80)} is not key=value (e.g. ci.git.branch=main); ignored.`);
      continue;
    }
    attributes[a.slice(0, eq).trim()] = a.slice(eq + 1);
  }
  attributes['ci.level'] = level;
  const name = (values.name as string | undefined) ?? commandLine(command, args);
  attributes['ci.name'] = name;
  if (typeof values.url === 'string') attributes['ci.url'] = values.url;

  const remote = api.trace.getSpanContext(parent.context);
  const traceId = remote?.traceId ?? randomHex(16);
  const spanId = randomHex(8);
  const sc: SpanContext = { traceId, spanId, traceFlags: remote?.traceFlags ?? SAMPLED, ...(remote?.traceState ? { traceState: remote.traceState } : {}) };
  const start = hrNow();
  const span = {
    name,
    spanContext: () => sc,
    parentSpanContext: remote ? { ...remote, isRemote: true } : undefined,
    startTime: start,
    endTime: [0, 0] as HrTime,
    status: { code: SPAN_UNSET } as ReadableSpanLike['status'],
    attributes,
    events: [],
    resource: { attributes: { 'service.name': 'datadog-ci-pipeline-exporter', 'host.name': hostname() } },
  } satisfies ReadableSpanLike & { spanContext(): SpanContext };

  const exporter = new DatadogCIPipelineExporter(options);
  // The command's env needs the lineage now; the running event waits (see Telemetry.running).
  const lineage = new DatadogCIPipelineSpanProcessor(exporter, { runningEvents: false });
  lineage.onStart(span, parent.context);
  const running: Telemetry['running'] =
    level === 'pipeline' || level === 'job'
      ? {
          ready: undici.loadUndici().catch(() => undefined),
          start: () => {
            const p = new DatadogCIPipelineSpanProcessor(exporter);
            p.onStart(span, parent.context);
            return p;
          },
        }
      : undefined;
  return { span, processor: lineage, lineage, running, timeoutMs: options.shutdownTimeoutMs ?? 30_000, childEnv: propagation.envForChildProcess(span) };
}

function runCommand(command: string, args: string[], env: NodeJS.ProcessEnv, telemetry: Telemetry | undefined): Promise<number> {
  const childEnv = telemetry ? { ...env, ...telemetry.childEnv } : env;
  return new Promise<number>((resolve) => {
    let child: ReturnType<typeof spawn> | undefined;
    let pending: NodeJS.Signals | undefined;
    // Installed before the spawn: a signal that arrives between the spawn and the next line
    // (a loaded machine can pause this process right there) is held and forwarded, not fatal.
    const forward = (signal: NodeJS.Signals): void => {
      if (child) child.kill(signal);
      else pending = signal;
    };
    const onInt = (): void => forward('SIGINT');
    const onTerm = (): void => forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const finish = (code: number, message: string | undefined): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void end(telemetry, code, message).then(() => resolve(code));
    };
    try {
      child = spawn(command, args, { stdio: 'inherit', env: childEnv });
    } catch (err) {
      say(`cannot run ${JSON.stringify(command).slice(0, 200)}: ${err instanceof Error ? err.message : String(err)}`);
      finish(127, `cannot run the command: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (pending) child.kill(pending);
    let done = false;
    if (telemetry?.running) {
      const { ready, start } = telemetry.running;
      // One turn of the event loop after undici has loaded: an exit or error that came in while it
      // loaded (synchronously, in the CommonJS bin) is seen first.
      void ready.then(() =>
        setImmediate(() => {
          if (done) return;
          try {
            telemetry.processor = start();
          } catch {
            // no running event: the finished one still goes through the lineage processor
          }
        }),
      );
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      done = true;
      const code = err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 127;
      const what = err.code === 'ENOENT' ? 'command not found' : err.code === 'EACCES' ? 'permission denied' : `cannot run it (${err.code ?? err.message})`;
      say(`${what}: ${JSON.stringify(command).slice(0, 200)}`);
      finish(code, `${what}: ${command}`);
    });
    child.on('exit', (code, signal) => {
      if (done) return;
      done = true;
      if (signal) {
        const n = constants.signals[signal] ?? 0;
        finish(128 + n, `killed by ${signal} (exit code ${128 + n})`);
      } else {
        finish(code ?? 0, code ? `exit code ${code}` : undefined);
      }
    });
  });
}

/** Ends the span and delivers it within shutdownTimeoutMs; nothing here can fail the build. */
async function end(telemetry: Telemetry | undefined, code: number, message: string | undefined): Promise<void> {
  if (!telemetry) return;
  const { span, processor, lineage, timeoutMs } = telemetry;
  try {
    span.endTime = hrNow();
    if (code !== 0) {
      span.status = { code: SPAN_ERROR, message: message ?? `exit code ${code}` } as ReadableSpanLike['status'];
      span.attributes['ci.error.message'] = message ?? `exit code ${code}`;
    }
    processor.onEnd(span);
    // The exporter's own deadline bounds this; the timer is a second fence for the build's sake.
    let timer: NodeJS.Timeout | undefined;
    // The processor the span ended in first: it hands its event over before the exporter (shared)
    // shuts down; the other one only lets go of what it learned.
    const down = Promise.all([processor.shutdown(), processor === lineage ? undefined : lineage.shutdown()]);
    await Promise.race([down, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs + 1000)))]);
    clearTimeout(timer);
  } catch (err) {
    say(`telemetry error (the command's exit code is kept): ${err instanceof Error ? err.message : String(err)}`);
  }
  // The span is delivered (or given up on): whatever is left (undici closing its sockets takes a
  // few hundred ms, an endpoint that never closes one) must not keep the build waiting. Exit as
  // soon as what was written to stdout and stderr has left (at once for files and terminals, and
  // for pipes unless one is full), not after a fixed delay: every millisecond here is a build's.
  exitWhenWritten(code);
}

/** process.exit(code) once stdout and stderr hold nothing unwritten (at most ~1 s for a stuck pipe). */
function exitWhenWritten(code: number): void {
  const pending = [process.stdout, process.stderr].filter((s) => s.writableLength > 0);
  if (pending.length === 0) {
    process.exit(code);
    return;
  }
  let left = pending.length;
  // A write's callback runs once it and every write before it have left.
  for (const s of pending) s.write('', () => --left === 0 && process.exit(code));
  setTimeout(() => process.exit(code), 1000).unref();
}

function hrNow(): HrTime {
  const ms = performance.timeOrigin + performance.now();
  return [Math.floor(ms / 1000), Math.floor((ms % 1000) * 1e6)];
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** The command as one would type it: arguments quoted for a POSIX shell where needed. */
function commandLine(command: string, args: string[]): string {
  return [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * `bytes` random bytes in hex, from Math.random, as the SDK's RandomIdGenerator makes its trace
 * and span IDs: loading node:crypto for two IDs cost a `run` about 6 ms of start-up. All zeros
 * is not a valid ID (W3C Trace Context), so that one draw in 2^64 is drawn again.
 */
export function randomHex(bytes: number): string {
  let out = '';
  for (let i = 0; i < bytes; i++) out += Math.floor(Math.random() * 256).toString(16).padStart(2, '0');
  return /^0+$/.test(out) ? randomHex(bytes) : out;
}
