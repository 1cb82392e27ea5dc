// The exporter's options as command-line flags, shared by `run` and `serve`: one table, so that
// every option has a flag, `--help` lists them all, and both subcommands read them alike.
// The API key is never a flag value (a flag shows in `ps` and in shell history): it comes from
// DD_API_KEY or from the file named by --api-key-file.
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import type { DatadogCIPipelineExporterOptions } from '../options.js';

type Kind = 'string' | 'number' | 'boolean';

interface FlagSpec {
  flag: string;
  kind: Kind;
  /** Where the value goes in the options; a dotted path for nested ones (retry.*). */
  option?: string;
  help: string;
}

export const EXPORTER_FLAGS: readonly FlagSpec[] = [
  { flag: 'endpoint', kind: 'string', option: 'endpoint', help: 'URL to POST events to (env DD_CI_PIPELINE_ENDPOINT; default https://api.<site>/api/v2/ci/pipeline)' },
  { flag: 'site', kind: 'string', option: 'site', help: 'Datadog site, e.g. datadoghq.eu (env DD_SITE)' },
  { flag: 'api-key-file', kind: 'string', help: 'read the API key from this file (else env DD_API_KEY)' },
  { flag: 'env', kind: 'string', option: 'env', help: 'env of every event (env DD_ENV)' },
  { flag: 'service', kind: 'string', option: 'service', help: 'service of every event' },
  { flag: 'provider-name', kind: 'string', option: 'providerName', help: 'provider_name of every event (default custom)' },
  { flag: 'max-batch-events', kind: 'number', option: 'maxBatchEvents', help: 'events per request, 1-1000' },
  { flag: 'max-batch-bytes', kind: 'number', option: 'maxBatchBytes', help: 'uncompressed bytes per request' },
  { flag: 'request-timeout-ms', kind: 'number', option: 'requestTimeoutMs', help: 'timeout of one HTTP attempt' },
  { flag: 'max-concurrent-requests', kind: 'number', option: 'maxConcurrentRequests', help: 'requests in flight at once' },
  { flag: 'max-queued-events', kind: 'number', option: 'maxQueuedEvents', help: 'ready events waiting to be sent' },
  { flag: 'retry-initial-delay-ms', kind: 'number', option: 'retry.initialDelayMs', help: 'first retry delay' },
  { flag: 'retry-max-delay-ms', kind: 'number', option: 'retry.maxDelayMs', help: 'largest retry delay' },
  { flag: 'retry-deadline-ms', kind: 'number', option: 'retry.deadlineMs', help: 'total retry budget of one batch' },
  { flag: 'max-pending-spans', kind: 'number', option: 'maxPendingSpans', help: 'spans held while waiting for their ancestors' },
  { flag: 'max-remembered-spans', kind: 'number', option: 'maxRememberedSpans', help: 'resolved spans remembered for late children' },
  { flag: 'max-event-age-ms', kind: 'number', option: 'maxEventAgeMs', help: 'events older than this are dropped' },
  { flag: 'flush-timeout-ms', kind: 'number', option: 'flushTimeoutMs', help: 'upper bound of a flush' },
  { flag: 'shutdown-timeout-ms', kind: 'number', option: 'shutdownTimeoutMs', help: 'upper bound of the final delivery' },
  { flag: 'gzip', kind: 'boolean', option: 'gzip', help: 'gzip request bodies' },
  { flag: 'spool-dir', kind: 'string', option: 'spoolDir', help: 'directory for undeliverable events, sent by the next run' },
  { flag: 'proxy', kind: 'string', option: 'proxy', help: 'HTTP proxy URL (default HTTPS_PROXY/HTTP_PROXY/NO_PROXY)' },
  { flag: 'no-proxy', kind: 'boolean', help: 'connect directly, whatever the proxy variables say' },
  { flag: 'no-detect', kind: 'boolean', help: 'do not detect CI and git values from the environment (detectEnvironment: false)' },
  { flag: 'redact-parameters', kind: 'string', help: 'parameter key substrings sent as [redacted], comma-separated (default TOKEN,SECRET,PASSWORD,PASSWD,KEY,CREDENTIAL,AUTH; none: no redaction)' },
  { flag: 'vocabularies', kind: 'string', help: "other tools' span vocabularies read: all (default), none, or a comma list of github-receiver,gitlab-receiver,jenkins,github-actions,cicd,datadog" },
];

/** The `options` part of a `parseArgs` config for EXPORTER_FLAGS (every value a string or a boolean). */
export function exporterParseOptions(): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const f of EXPORTER_FLAGS) out[f.flag] = { type: f.kind === 'boolean' ? 'boolean' : 'string' };
  return out;
}

/** `--help` lines for EXPORTER_FLAGS. */
export function exporterHelp(): string {
  return EXPORTER_FLAGS.map((f) => `  --${(f.flag + (f.kind === 'boolean' ? '' : ` <${f.kind === 'number' ? 'n' : 'value'}>`)).padEnd(34)} ${f.help}`).join('\n');
}

export type FlagResult = { ok: true; options: DatadogCIPipelineExporterOptions } | { ok: false; message: string };

/**
 * Parsed flag values (from parseArgs) → exporter options. What the flags leave out is left to the
 * exporter's own defaults and environment fallbacks (DD_SITE, DD_ENV, DD_CI_PIPELINE_ENDPOINT, …:
 * resolveOptions reads them, and names the variable when one is wrong).
 */
export function exporterOptionsFromFlags(values: Record<string, string | boolean | undefined | Array<string | boolean>>): FlagResult {
  const options: Record<string, unknown> = {};
  for (const f of EXPORTER_FLAGS) {
    const raw = values[f.flag];
    if (raw === undefined || !f.option) continue;
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    let v: unknown = value;
    if (f.kind === 'number') {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      if (!Number.isFinite(n)) return { ok: false, message: `--${f.flag} expects a number, got ${JSON.stringify(String(value)).slice(0, 60)}` };
      v = n;
    }
    const [a, b] = f.option.split('.') as [string, string | undefined];
    if (b === undefined) options[a] = v;
    else ((options[a] ??= {}) as Record<string, unknown>)[b] = v;
  }
  if (values['no-proxy'] === true) options.proxy = false;
  if (values['no-detect'] === true) options.detectEnvironment = false;
  const list = (v: unknown): string[] | undefined =>
    typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : undefined;
  const redact = values['redact-parameters'];
  if (typeof redact === 'string') options.redactParameters = /^(none|false)$/i.test(redact.trim()) ? false : list(redact);
  const vocab = values.vocabularies;
  if (typeof vocab === 'string') {
    const v = vocab.trim().toLowerCase();
    options.vocabularies = v === 'all' || v === 'true' ? true : v === 'none' || v === 'false' ? false : list(vocab);
  }
  const keyFile = values['api-key-file'];
  if (typeof keyFile === 'string') {
    try {
      const key = readFileSync(keyFile, 'utf8').trim();
      if (key === '') return { ok: false, message: `--api-key-file ${JSON.stringify(keyFile)} is empty` };
      options.apiKey = key;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { ok: false, message: `--api-key-file ${JSON.stringify(keyFile)} cannot be read (${code})` };
    }
  }
  return { ok: true, options: options as DatadogCIPipelineExporterOptions };
}
