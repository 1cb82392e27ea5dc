// The ways to get the same spans to an intake, and delivery alone for scale. Each contender is
// created fresh for every timed run (untimed), so every one of them pays for opening its
// connections inside the timing.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { client, v2 } from '@datadog/datadog-api-client';
import { Pool } from 'undici';
import type { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { batches } from './workload.js';
import { handMapOne, type HandEvent } from './mapping.js';

/** The BatchSpanProcessor default: what an exporter is handed at a time. */
export const BSP_BATCH = 512;
/** "A few requests in flight" for the hand-written paths. */
export const IN_FLIGHT = 4;

export interface Contender {
  name: string;
  /** Untimed: build clients, open nothing yet. */
  setup(): Promise<void> | void;
  /** Timed: everything from the first span handed over until the intake has answered for all. */
  run(): Promise<void>;
  /** Untimed: release sockets and timers. */
  teardown(): Promise<void> | void;
  /** Events (or OTLP spans) the sink must count after one run. */
  expected: number;
}

/** Marks a caller takes around each export() call (bench/timeline.ts): before it, as it returns, in its callback. */
export interface CallHooks {
  calling(): void;
  returned(): void;
  calledBack(): void;
}

/**
 * Hands spans to an exporter the way a BatchSpanProcessor does: BSP_BATCH at a time, the next
 * batch only after the previous export() called back, with a turn of the event loop in between
 * (the BSP's timer), then forceFlush(). Without the turn a synchronous exporter would look
 * like one long stall made by this driver rather than by the exporter.
 */
export async function driveExporter(exporter: SpanExporter, spans: readonly ReadableSpan[], hooks?: CallHooks): Promise<void> {
  for (const batch of batches(spans, BSP_BATCH)) {
    hooks?.calling();
    const result = await new Promise<ExportResult>((resolve) => {
      if (!hooks) return exporter.export(batch, resolve);
      exporter.export(batch, (r) => {
        hooks.calledBack();
        resolve(r);
      });
      hooks.returned();
    });
    if (result.code !== ExportResultCode.SUCCESS) {
      throw new Error(`export failed: ${result.error?.message ?? 'FAILED'}`);
    }
    await tick();
  }
  // Optional in the SpanExporter interface; both exporters measured here implement it.
  await exporter.forceFlush?.();
}

/** (1) This exporter, end to end; the factory hides the constructor's options. */
export function ourExporter(
  make: () => SpanExporter,
  spans: readonly ReadableSpan[],
  name = 'this exporter',
): Contender {
  let exporter: SpanExporter | undefined;
  return {
    name,
    expected: spans.length,
    setup() {
      exporter = make();
    },
    run() {
      return driveExporter(exporter as SpanExporter, spans);
    },
    async teardown() {
      await exporter?.shutdown();
    },
  };
}

/** (2) The stock OTLP/HTTP exporter with its defaults: http/json, keep-alive agent. */
export function otlpExporter(url: string, spans: readonly ReadableSpan[]): Contender {
  let exporter: OTLPTraceExporter | undefined;
  return {
    name: 'OTLP/HTTP json',
    expected: spans.length,
    setup() {
      exporter = new OTLPTraceExporter({ url });
    },
    run() {
      return driveExporter(exporter as OTLPTraceExporter, spans);
    },
    async teardown() {
      await exporter?.shutdown();
    },
  };
}

/** Snake-case hand event → the client's typed model (camelCase keys, Date times). */
function toTyped(e: HandEvent): v2.CIAppCreatePipelineEventRequestData {
  const r = e.attributes.resource;
  const common = {
    name: r.name,
    start: new Date(r.start),
    end: new Date(r.end),
    tags: r.tags,
    node: r.node,
    error: r.error,
    git: r.git
      ? {
          repositoryUrl: r.git.repository_url,
          sha: r.git.sha,
          branch: r.git.branch,
          authorEmail: r.git.author_email ?? '',
        }
      : undefined,
  };
  let resource: v2.CIAppCreatePipelineEventRequestAttributesResource;
  if (r.level === 'pipeline') {
    resource = {
      ...common,
      level: 'pipeline',
      uniqueId: r.unique_id as string,
      url: r.url as string,
      status: r.status,
      partialRetry: false,
    } satisfies v2.CIAppPipelineEventFinishedPipeline;
  } else {
    const child = {
      ...common,
      id: r.id as string,
      pipelineUniqueId: r.pipeline_unique_id as string,
      pipelineName: r.pipeline_name as string,
      status: r.status,
    };
    if (r.level === 'stage') resource = { ...child, level: 'stage' } satisfies v2.CIAppPipelineEventStage;
    else if (r.level === 'job') {
      resource = {
        ...child,
        level: 'job',
        url: r.url as string,
        queueTime: r.queue_time,
        stageId: r.stage_id,
        stageName: r.stage_name,
      } satisfies v2.CIAppPipelineEventFinishedJob;
    } else {
      resource = {
        ...child,
        level: 'step',
        stageId: r.stage_id,
        stageName: r.stage_name,
        jobId: r.job_id,
        jobName: r.job_name,
      } satisfies v2.CIAppPipelineEventStep;
    }
  }
  return {
    attributes: { resource, env: e.attributes.env, providerName: e.attributes.provider_name, service: e.attributes.service },
    type: 'cipipeline_resource_request',
  };
}

/**
 * (3) The official client, one event per call and IN_FLIGHT calls at a time. It cannot batch:
 * an array in `data` matches both members of the `oneOf` (an array passes as a
 * CIAppCreatePipelineEventRequestData through its additionalProperties), so the serializer
 * throws "matches multiple types" — or, if an element is invalid, silently sends `{"data":{}}`.
 * The hand mapping (span → typed model) runs inside the timing: a user pays for it.
 */
export function officialClient(port: number, spans: readonly ReadableSpan[]): Contender {
  let api: v2.CIVisibilityPipelinesApi | undefined;
  return {
    name: 'official client',
    expected: spans.length,
    setup() {
      // Server 2 of the spec is `{protocol}://{name}`: the documented way to aim it elsewhere.
      const conf = client.createConfiguration({ authMethods: { apiKeyAuth: 'bench-key' }, serverIndex: 1 });
      conf.setServerVariables({ protocol: 'http', name: `127.0.0.1:${port}` });
      api = new v2.CIVisibilityPipelinesApi(conf);
    },
    async run() {
      const byId = new Map<string, ReadableSpan>();
      for (const s of spans) byId.set(s.spanContext().spanId, s);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < spans.length) {
          const e = handMapOne(spans[next++] as ReadableSpan, byId);
          if (e) await (api as v2.CIVisibilityPipelinesApi).createCIAppPipelineEvent({ body: { data: toTyped(e) } });
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    },
    teardown() {},
  };
}

/** One POST of a prebuilt (or streamed) body for the hand-written contenders and bench/overlap.ts; anything but the sink's 202 fails the run. */
export async function post(pool: Pool, path: string, body: string | Buffer | Readable, who: string): Promise<void> {
  const res = await pool.request({
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', 'dd-api-key': 'bench-key' },
    body,
  });
  await res.body.dump();
  if (res.statusCode !== 202) throw new Error(`${who}: HTTP ${res.statusCode}`);
}

/**
 * (4) The floor: events already built as plain objects (untimed), then only what no exporter
 * can avoid: JSON.stringify of 1000-event bodies and undici POSTs, IN_FLIGHT at a time on
 * keep-alive connections.
 */
export function floor(origin: string, path: string, events: readonly HandEvent[]): Contender {
  let pool: Pool | undefined;
  return {
    name: 'floor (stringify+undici)',
    expected: events.length,
    setup() {
      pool = new Pool(origin, { connections: IN_FLIGHT, pipelining: 1 });
    },
    async run() {
      const p = pool as Pool;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < events.length) {
          const chunk = events.slice(next, next + 1000);
          next += chunk.length;
          await post(p, path, JSON.stringify({ data: chunk }), 'floor');
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    },
    async teardown() {
      await pool?.close();
    },
  };
}

/**
 * (5) Delivery alone: the same events, already one JSON body per 512 spans (what this exporter
 * sends per `export()` call), POSTed one at a time with undici. No mapping, no serialization:
 * the bench reads from it how much of a "2× OTLP" budget the wire leaves for building events.
 * The bodies are bytes, as this exporter's are (delivery/batcher.ts): undici sends a string
 * body at 2–3× the CPU of the same body as a Buffer here (7.4 against 2.7 µs per event).
 */
export function transportAlone(origin: string, path: string, events: readonly HandEvent[]): Contender {
  const bodies = batches(events, BSP_BATCH).map((chunk) => Buffer.from(JSON.stringify({ data: chunk })));
  let pool: Pool | undefined;
  return {
    name: 'transport alone (prebuilt bodies)',
    expected: events.length,
    setup() {
      pool = new Pool(origin, { connections: 1, pipelining: 1 });
    },
    async run() {
      const p = pool as Pool;
      for (const body of bodies) await post(p, path, body, 'transport');
    },
    async teardown() {
      await pool?.close();
    },
  };
}
