// The "simple hand mapping" a user would write next to the official client: span → pipeline
// event, with names and IDs inherited from labelled ancestors. It sees the whole workload at
// once (no holding, no validation), so it is a lower bound on real mapping work. The floor
// contender uses its output, prebuilt, so that its bytes per event resemble a real exporter's.
import { SpanStatusCode, type AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

export interface HandResource {
  level: 'pipeline' | 'stage' | 'job' | 'step';
  name: string;
  start: string;
  end: string;
  status: 'success' | 'error';
  unique_id?: string;
  id?: string;
  url?: string;
  partial_retry?: boolean;
  pipeline_unique_id?: string;
  pipeline_name?: string;
  stage_id?: string;
  stage_name?: string;
  job_id?: string;
  job_name?: string;
  queue_time?: number;
  tags?: string[];
  git?: { repository_url: string; sha: string; branch?: string; author_email?: string };
  node?: { hostname?: string; name?: string; labels?: string[] };
  error?: { type?: string; message?: string; stack?: string };
}

export interface HandEvent {
  attributes: { resource: HandResource; env: string; provider_name: string; service: string };
  type: 'cipipeline_resource_request';
}

const uuid = (hex32: string): string =>
  `${hex32.slice(0, 8)}-${hex32.slice(8, 12)}-${hex32.slice(12, 16)}-${hex32.slice(16, 20)}-${hex32.slice(20, 32)}`;

const iso = (t: [number, number]): string => new Date(t[0] * 1000 + t[1] / 1e6).toISOString();

const str = (v: AttributeValue | undefined): string | undefined => (v === undefined ? undefined : String(v));

/** Maps every labelled span; `byId` must hold all of a span's ancestors. */
export function handMap(spans: readonly ReadableSpan[]): HandEvent[] {
  const byId = new Map<string, ReadableSpan>();
  for (const s of spans) byId.set(s.spanContext().spanId, s);
  const out: HandEvent[] = [];
  for (const s of spans) {
    const e = handMapOne(s, byId);
    if (e) out.push(e);
  }
  return out;
}

export function handMapOne(s: ReadableSpan, byId: ReadonlyMap<string, ReadableSpan>): HandEvent | undefined {
  const a = s.attributes;
  const level = a['ci.level'] as HandResource['level'] | undefined;
  if (!level) return undefined;
  const ctx = s.spanContext();
  const r: HandResource = {
    level,
    name: s.name,
    start: iso(s.startTime),
    end: iso(s.endTime),
    status: s.status.code === SpanStatusCode.ERROR ? 'error' : 'success',
  };
  const stableId = uuid((ctx.traceId.slice(0, 16) + ctx.spanId).padEnd(32, '0'));
  let pipeline: ReadableSpan | undefined;
  for (let p = s.parentSpanContext?.spanId; p; ) {
    const anc = byId.get(p);
    if (!anc) break;
    const l = anc.attributes['ci.level'];
    const aid = uuid((ctx.traceId.slice(0, 16) + anc.spanContext().spanId).padEnd(32, '0'));
    if (l === 'pipeline') pipeline = anc;
    else if (l === 'stage' && !r.stage_id) {
      r.stage_id = aid;
      r.stage_name = anc.name;
    } else if (l === 'job' && !r.job_id) {
      r.job_id = aid;
      r.job_name = anc.name;
    }
    p = anc.parentSpanContext?.spanId;
  }
  if (level === 'pipeline') {
    r.unique_id = uuid(ctx.traceId);
    r.partial_retry = false;
    pipeline = s;
  } else {
    r.id = stableId;
    r.pipeline_unique_id = uuid(ctx.traceId);
    if (pipeline) r.pipeline_name = pipeline.name;
  }
  if (a['ci.url'] !== undefined) r.url = str(a['ci.url']);
  if (a['ci.queue_time'] !== undefined) r.queue_time = Number(a['ci.queue_time']);
  if (Array.isArray(a['ci.tags'])) r.tags = a['ci.tags'] as string[];
  if (pipeline) {
    const pa = pipeline.attributes;
    r.git = {
      repository_url: String(pa['ci.git.repository_url']),
      sha: String(pa['ci.git.sha']),
      branch: str(pa['ci.git.branch']),
      author_email: str(pa['ci.git.author_email']),
    };
  }
  r.node = { hostname: str(s.resource.attributes['host.name']) };
  if (a['ci.node.name'] !== undefined) r.node.name = str(a['ci.node.name']);
  if (r.status === 'error') {
    const ex = s.events.find((e) => e.name === 'exception');
    r.error = ex
      ? {
          type: str(ex.attributes?.['exception.type']),
          message: str(ex.attributes?.['exception.message']),
          stack: str(ex.attributes?.['exception.stacktrace']),
        }
      : { message: s.status.message ?? 'failed' };
  }
  return {
    attributes: { resource: r, env: 'ci', provider_name: 'custom', service: 'monorepo-build' },
    type: 'cipipeline_resource_request',
  };
}
