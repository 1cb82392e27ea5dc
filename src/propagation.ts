// Builds that span processes: a build tool runs every step as a child process, so the trace and
// the CI lineage must cross exec(). The trace context goes as the OpenTelemetry specification's
// environment-variable carriers (TRACEPARENT, TRACESTATE, BAGGAGE: the W3C headers' values under
// upper-case names); the CI lineage goes as DD_CI_* variables, because a child's spans have a
// remote parent and the exporter then takes their links from explicit `ci.*` attributes.
import {
  context as apiContext,
  createTraceState,
  isValidSpanId,
  isValidTraceId,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { PREFIX, quote } from './diagnostics.js';
import { setOwn } from './mapping/attributes.js';
import { parseLevel, type Level } from './mapping/fields.js';
import { learnedLineage } from './processor.js';

/** The environment variables this module reads and writes, by what they carry. */
export const ENV = {
  traceparent: 'TRACEPARENT',
  tracestate: 'TRACESTATE',
  baggage: 'BAGGAGE',
  /** The level of the nearest labelled span above the child (a nested `run`'s default level). */
  parentLevel: 'DD_CI_PARENT_LEVEL',
  pipelineUniqueId: 'DD_CI_PIPELINE_UNIQUE_ID',
  pipelineName: 'DD_CI_PIPELINE_NAME',
  stageId: 'DD_CI_STAGE_ID',
  stageName: 'DD_CI_STAGE_NAME',
  jobId: 'DD_CI_JOB_ID',
  jobName: 'DD_CI_JOB_NAME',
  endpoint: 'DD_CI_PIPELINE_ENDPOINT',
  site: 'DD_SITE',
  env: 'DD_ENV',
  service: 'DD_CI_PIPELINE_SERVICE',
  providerName: 'DD_CI_PIPELINE_PROVIDER_NAME',
} as const;

/** Lineage variables and the `ci.*` attribute each becomes in the child. */
const LINK_ATTRIBUTES: ReadonlyArray<readonly [keyof typeof ENV, string]> = [
  ['pipelineUniqueId', 'ci.pipeline_unique_id'],
  ['pipelineName', 'ci.pipeline_name'],
  ['stageId', 'ci.stage_id'],
  ['stageName', 'ci.stage_name'],
  ['jobId', 'ci.job_id'],
  ['jobName', 'ci.job_name'],
];

let saidUnknown = false;
let saidBadTraceparent = false;
const say = (line: string): void => {
  process.stderr.write(`${PREFIX} ${line}\n`);
};

/**
 * The environment entries to merge into a child process's env (`{ ...process.env, ...envForChildProcess(span) }`):
 * the trace context, the CI lineage the child's spans need, and the exporter settings a nested
 * `run` needs (endpoint or site, env, service, provider name; never the API key). Lineage entries
 * are always present, empty when the span has none, so that values inherited from further up
 * cannot leak into the child. The lineage is what a DatadogCIPipelineSpanProcessor learned when
 * the span started; for a span no processor saw, the trace context alone is returned (said once).
 * Baggage is read from `context` (default: the active one).
 */
export function envForChildProcess(span: Pick<Span, 'spanContext'>, context: Context = apiContext.active()): Record<string, string> {
  const sc = span.spanContext();
  const out: Record<string, string> = {};
  out[ENV.traceparent] = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
  out[ENV.tracestate] = sc.traceState?.serialize() ?? '';
  out[ENV.baggage] = serializeBaggage(context);
  const learned = learnedLineage(sc.traceId, sc.spanId);
  if (!learned) {
    if (!saidUnknown) {
      saidUnknown = true;
      say(
        `envForChildProcess: no DatadogCIPipelineSpanProcessor saw span ${quote(sc.spanId)} (trace ${sc.traceId}) start, so its CI lineage is unknown; the child gets the trace context only. Add the processor to the provider before starting the span. (reported once)`,
      );
    }
    return out;
  }
  const { lineage, nearest, settings } = learned;
  out[ENV.parentLevel] = nearest ?? '';
  out[ENV.pipelineUniqueId] = lineage.pipeline?.unique_id ?? '';
  out[ENV.pipelineName] = lineage.pipeline?.name ?? '';
  out[ENV.stageId] = lineage.stage?.id ?? '';
  out[ENV.stageName] = lineage.stage?.name ?? '';
  out[ENV.jobId] = lineage.job?.id ?? '';
  out[ENV.jobName] = lineage.job?.name ?? '';
  if (settings.endpoint !== undefined) out[ENV.endpoint] = settings.endpoint;
  else if (settings.site !== undefined) out[ENV.site] = settings.site;
  const env = lineage.env ?? settings.env;
  if (env !== undefined) out[ENV.env] = env;
  const service = lineage.service ?? settings.service;
  if (service !== undefined) out[ENV.service] = service;
  out[ENV.providerName] = lineage.provider_name ?? settings.providerName;
  return out;
}

export interface ParentFromEnv {
  /** The context to start the child's top span in: a remote parent, or ROOT_CONTEXT. */
  context: Context;
  /** The `ci.*` attributes that carry the child's lineage (links to its pipeline, stage, job). */
  attributes: Attributes;
  /** The level of the nearest labelled span in the parent process, when known. */
  parentLevel?: Level;
}

/**
 * The parent a child process's top span should have, from the environment a parent process set
 * with envForChildProcess (or any tool that follows the OpenTelemetry env carriers). With nothing
 * in the env: `{ context: ROOT_CONTEXT, attributes: {} }`.
 */
export function parentFromEnv(env: NodeJS.ProcessEnv = process.env): ParentFromEnv {
  let context = ROOT_CONTEXT;
  const attributes: Attributes = {};
  const get = (key: keyof typeof ENV): string | undefined => {
    const v = env[ENV[key]];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const tp = get('traceparent');
  if (tp !== undefined) {
    const parsed = parseTraceparent(tp);
    if (parsed) {
      const ts = get('tracestate');
      context = trace.setSpanContext(context, { ...parsed, isRemote: true, ...(ts ? { traceState: createTraceState(ts) } : {}) });
    } else if (!saidBadTraceparent) {
      saidBadTraceparent = true;
      say(`parentFromEnv: TRACEPARENT ${quote(tp)} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>); the span starts a new trace. (reported once)`);
    }
  }
  const bg = get('baggage');
  if (bg !== undefined) {
    const entries = parseBaggage(bg);
    if (Object.keys(entries).length > 0) context = propagation.setBaggage(context, propagation.createBaggage(entries));
  }
  // A pipeline link needs both halves (the exporter passes a link on only when it has both).
  const pipelineId = get('pipelineUniqueId');
  const pipelineName = get('pipelineName');
  for (const [key, attribute] of LINK_ATTRIBUTES) {
    if ((key === 'pipelineUniqueId' || key === 'pipelineName') && (pipelineId === undefined || pipelineName === undefined)) continue;
    const v = get(key);
    if (v !== undefined) attributes[attribute] = v;
  }
  const level = parseLevel(get('parentLevel'));
  return level ? { context, attributes, parentLevel: level } : { context, attributes };
}

function parseTraceparent(value: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(value);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields; later versions may add more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (!isValidTraceId(traceId) || !isValidSpanId(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(flags, 16) & 0xff };
}

/** W3C baggage: `key=value` list members, percent-encoded, properties after `;` kept as metadata-free values. */
function serializeBaggage(context: Context): string {
  const baggage = propagation.getBaggage(context);
  if (!baggage) return '';
  const parts: string[] = [];
  for (const [key, entry] of baggage.getAllEntries()) parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(entry.value)}`);
  return parts.join(',');
}

function parseBaggage(value: string): Record<string, { value: string }> {
  const out: Record<string, { value: string }> = {};
  for (const member of value.split(',')) {
    const [pair] = member.split(';');
    const eq = pair?.indexOf('=') ?? -1;
    if (!pair || eq <= 0) continue;
    try {
      setOwn(out, decodeURIComponent(pair.slice(0, eq).trim()), { value: decodeURIComponent(pair.slice(eq + 1).trim()) });
    } catch {
      // A malformed percent-escape: that member is skipped, the others are kept.
    }
  }
  return out;
}
