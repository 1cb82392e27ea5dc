// `datadog-ci-pipeline-exporter serve`: an OTLP/HTTP receiver (src/receiver/) in front of one
// exporter. Flags: the shared exporter table plus the receiver's own; the API key only from
// DD_API_KEY or --api-key-file. Prints `listening on http://HOST:PORT` once requests are
// accepted; SIGTERM/SIGINT drain (stop accepting, deliver or spool, exit 0).
import { isIPv4, isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { DatadogCIPipelineExporter } from '../exporter.js';
import { resolveOptions } from '../options.js';
import { Receiver } from '../receiver/server.js';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ELEMENTS } from '../receiver/limits.js';
import { exporterHelp, exporterOptionsFromFlags, exporterParseOptions } from './exporter-options.js';

const PREFIX = 'datadog-ci-pipeline-exporter serve';

export const SERVE_FLAGS: Array<{ flag: string; kind: 'string' | 'number'; help: string }> = [
  { flag: 'host', kind: 'string', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
  { flag: 'port', kind: 'number', help: 'port to listen on (default 4318, the OTLP/HTTP port; 0 picks a free one)' },
  { flag: 'token', kind: 'string', help: 'require Authorization: Bearer <token> (env DD_CI_PIPELINE_SERVE_TOKEN, preferred: a flag shows in ps)' },
  { flag: 'max-body-bytes', kind: 'number', help: `request body limit, on the wire and decompressed (default ${DEFAULT_MAX_BODY_BYTES})` },
  { flag: 'max-request-elements', kind: 'number', help: `messages/JSON objects one request may decode into (default ${DEFAULT_MAX_ELEMENTS})` },
  { flag: 'max-connections', kind: 'number', help: 'open connections at once (default 256)' },
  { flag: 'headers-timeout-ms', kind: 'number', help: 'time to receive a request\'s headers (default 10000)' },
  { flag: 'receive-timeout-ms', kind: 'number', help: 'time to receive a whole request (default 30000)' },
];

export function help(): string {
  const own = SERVE_FLAGS.map((f) => `  --${`${f.flag} <${f.kind === 'number' ? 'n' : 'value'}>`.padEnd(34)} ${f.help}`).join('\n');
  return [
    `usage: datadog-ci-pipeline-exporter serve [--host 127.0.0.1] [--port 4318] [--endpoint URL] [--token T] [flags]`,
    ``,
    `Receives OTLP/HTTP traces (POST /v1/traces, protobuf or JSON, gzip/deflate) and sends their CI`,
    `spans (ci.level = pipeline|stage|job|step) to Datadog CI Visibility. GET /healthz, GET /metrics.`,
    ``,
    `receiver flags:`,
    own,
    ``,
    `exporter flags:`,
    exporterHelp(),
    `  --${'help'.padEnd(34)} print this help`,
    ``,
    `environment: DD_API_KEY (the API key: never a flag), DD_SITE, DD_ENV, DD_CI_PIPELINE_ENDPOINT,`,
    `DD_CI_PIPELINE_SERVE_TOKEN. One instance must see every span of a trace: scale out by trace ID`,
    `(the collector's loadbalancing exporter, routing_key: traceID).`,
  ].join('\n');
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIPv4(host)) return host.startsWith('127.');
  if (isIPv6(host)) return host === '::1';
  return false;
}

function number(values: Record<string, unknown>, flag: string): number | undefined | string {
  const v = values[flag];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) return `--${flag} expects a whole number, got ${JSON.stringify(String(v)).slice(0, 60)}`;
  return n;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: argv,
      options: {
        ...exporterParseOptions(),
        ...Object.fromEntries(SERVE_FLAGS.map((f) => [f.flag, { type: 'string' as const }])),
        help: { type: 'boolean', short: 'h' },
        'api-key': { type: 'string' },
      },
      allowPositionals: false,
      strict: true,
    });
    values = parsed.values as Record<string, string | boolean | undefined>;
  } catch (err) {
    process.stderr.write(`${PREFIX}: ${err instanceof Error ? err.message : String(err)}\n(serve --help lists the flags)\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(`${help()}\n`);
    return 0;
  }
  if (values['api-key'] !== undefined) {
    // Refused without repeating it: a key on the command line is in ps and shell history.
    process.stderr.write(`${PREFIX}: --api-key is not accepted (a flag shows in ps and shell history): set DD_API_KEY or use --api-key-file\n`);
    return 2;
  }
  const flags = exporterOptionsFromFlags(values);
  if (!flags.ok) {
    process.stderr.write(`${PREFIX}: ${flags.message}\n`);
    return 2;
  }
  const nums: Record<string, number | undefined> = {};
  for (const f of SERVE_FLAGS) {
    if (f.kind !== 'number') continue;
    const n = number(values, f.flag);
    if (typeof n === 'string') {
      process.stderr.write(`${PREFIX}: ${n}\n`);
      return 2;
    }
    nums[f.flag] = n;
  }
  if (nums.port !== undefined && nums.port > 65535) {
    process.stderr.write(`${PREFIX}: --port must be 0-65535\n`);
    return 2;
  }
  // The exporter's configuration is checked before listening: a receiver that would drop
  // everything must not look healthy to the collector.
  const resolved = resolveOptions(flags.options, env);
  if (!resolved.ok) {
    process.stderr.write(`${PREFIX}: ${resolved.message}\n`);
    return 2;
  }
  const host = typeof values.host === 'string' && values.host.trim() !== '' ? values.host.trim() : '127.0.0.1';
  const tokenRaw = typeof values.token === 'string' ? values.token : env.DD_CI_PIPELINE_SERVE_TOKEN;
  const token = tokenRaw !== undefined && tokenRaw.trim() !== '' ? tokenRaw.trim() : undefined;
  if (!token && !isLoopback(host)) {
    process.stderr.write(`${PREFIX}: warning: listening on ${host} without a token: anyone who reaches this port can send pipelines to your Datadog account; set DD_CI_PIPELINE_SERVE_TOKEN\n`);
  }

  const shutdownTimeoutMs = resolved.options.shutdownTimeoutMs;
  // The wait for requests in progress comes out of the shutdown budget, so the whole drain stays
  // within shutdownTimeoutMs.
  const drainGraceMs = Math.min(2_000, Math.floor(shutdownTimeoutMs / 10));
  // No CI detection: serve's own environment and repository are not those of the builds whose
  // spans it receives (their producers' resources and attributes say what they are).
  const exporter = new DatadogCIPipelineExporter({ ...flags.options, detectEnvironment: false, shutdownTimeoutMs: shutdownTimeoutMs - drainGraceMs });
  const receiver = new Receiver(exporter, {
    host,
    port: nums.port ?? 4318,
    token,
    maxBodyBytes: nums['max-body-bytes'],
    maxElements: nums['max-request-elements'],
    maxConnections: nums['max-connections'],
    headersTimeoutMs: nums['headers-timeout-ms'],
    requestTimeoutMs: nums['receive-timeout-ms'],
    maxBacklog: resolved.options.delivery.maxQueuedEvents,
    drainGraceMs,
  });
  // Signal handlers go in before listening: a SIGTERM that arrives as soon as the address is
  // printed (or before) drains and exits 0 instead of killing the process.
  let signalled: string | undefined;
  let onSignal: ((signal: string) => void) | undefined;
  const onTerm = (): void => stop('SIGTERM');
  const onInt = (): void => stop('SIGINT');
  const stop = (signal: string): void => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    signalled = signal;
    onSignal?.(signal);
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let address: { url: string };
  try {
    address = await receiver.listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    process.stderr.write(`${PREFIX}: cannot listen on ${host}:${nums.port ?? 4318} (${code || (err instanceof Error ? err.message : String(err))})\n`);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await exporter.shutdown();
    return 1;
  }
  process.stdout.write(`listening on ${address.url}\n`);

  const signal = await new Promise<string>((resolve) => {
    if (signalled) resolve(signalled);
    else onSignal = resolve;
  });
  process.stderr.write(`${PREFIX}: ${signal}: draining (stop accepting, deliver what was received)\n`);
  await receiver.drain();
  return 0;
}
