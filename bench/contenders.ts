// The ways to get the same spans to an intake, and delivery alone for scale. Each contender is
// created fresh for every timed run (untimed) and warmed (untimed, after the bench's full
// collection: see `warm`), so every one of them is timed as a running process would be.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { client, v2 } from '@datadog/datadog-api-client';
import { Pool } from 'undici';
import type { Readable } from 'node:stream';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { batches, generate, TYPICAL, type GenerateOptions } from './workload.js';
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
  /**
   * Untimed, after measure()'s full collection and before the clock: a small run of the same
   * kind through the same client (spans of their own, so that none of the timed ones is a
   * duplicate). A forced collection (`gc()`) drops the code V8 optimized for objects of which
   * none is alive at that moment: this exporter's spans, events and batches all die between two
   * runs, and each of its rounds re-optimized ~55 functions (measured in session 14: 30–40
   * functions deoptimized per forced collection, ~5 µs of helper-thread CPU per event), which the
   * collections of a running process (six of them, at idle, with the host allocating) did not
   * do. The warm-up puts the timed run back where a running process is; every contender gets one.
   */
  warm?(): Promise<void>;
  /** Events (or OTLP spans) the sink must count after one run. */
  expected: number;
}

/**
 * Each contender's warm-up before a timed run (`warm`): pipelines of its own, and a pause for the
 * compiles they queue on V8's helper threads. Measured in session 14 (a throwaway probe, per-thread
 * CPU from /proc): with 30 pipelines this exporter's helper threads still spent 1.8–2.1 µs per
 * event of the timed run compiling, with 120 0.6–1.0, about what one exporter reaches after
 * ~170,000 spans in a process that never forces a collection.
 */
export const WARM_PIPELINES = 120;
const WARM_SETTLE_MS = 150;

/** The warm-up's spans for a typical-shaped workload: another seed (other IDs), the same shapes. */
export function warmWorkloadSpans(opts: GenerateOptions = {}): readonly ReadableSpan[] {
  return generate(WARM_PIPELINES, TYPICAL, 1001, opts).spans;
}

/** Runs `c`'s warm-up, if it has one, and waits for the compiles it queued. */
export async function warmUp(c: Pick<Contender, 'warm'>): Promise<void> {
  if (!c.warm) return;
  await c.warm();
  await sleep(WARM_SETTLE_MS);
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
  warmSpans?: readonly ReadableSpan[],
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
    ...(warmSpans && { warm: () => driveExporter(exporter as SpanExporter, warmSpans) }),
    async teardown() {
      await exporter?.shutdown();
    },
  };
}

/** (2) The stock OTLP/HTTP exporter with its defaults: http/json, keep-alive agent. */
export function otlpExporter(url: string, spans: readonly ReadableSpan[], warmSpans?: readonly ReadableSpan[]): Contender {
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
    ...(warmSpans && { warm: () => driveExporter(exporter as OTLPTraceExporter, warmSpans) }),
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
export function officialClient(port: number, spans: readonly ReadableSpan[], warmSpans?: readonly ReadableSpan[]): Contender {
  let api: v2.CIVisibilityPipelinesApi | undefined;
  const send = async (xs: readonly ReadableSpan[]): Promise<void> => {
    const byId = new Map<string, ReadableSpan>();
    for (const s of xs) byId.set(s.spanContext().spanId, s);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < xs.length) {
        const e = handMapOne(xs[next++] as ReadableSpan, byId);
        if (e) await (api as v2.CIVisibilityPipelinesApi).createCIAppPipelineEvent({ body: { data: toTyped(e) } });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  };
  return {
    name: 'official client',
    expected: spans.length,
    setup() {
      // Server 2 of the spec is `{protocol}://{name}`: the documented way to aim it elsewhere.
      const conf = client.createConfiguration({ authMethods: { apiKeyAuth: 'bench-key' }, serverIndex: 1 });
      conf.setServerVariables({ protocol: 'http', name: `127.0.0.1:${port}` });
      api = new v2.CIVisibilityPipelinesApi(conf);
    },
    run: () => send(spans),
    ...(warmSpans && { warm: () => send(warmSpans) }),
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
export function floor(origin: string, path: string, events: readonly HandEvent[], warmEvents?: readonly HandEvent[]): Contender {
  let pool: Pool | undefined;
  const send = async (xs: readonly HandEvent[]): Promise<void> => {
    const p = pool as Pool;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < xs.length) {
        const chunk = xs.slice(next, next + 1000);
        next += chunk.length;
        await post(p, path, JSON.stringify({ data: chunk }), 'floor');
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  };
  return {
    name: 'floor (stringify+undici)',
    expected: events.length,
    setup() {
      pool = new Pool(origin, { connections: IN_FLIGHT, pipelining: 1 });
    },
    run: () => send(events),
    ...(warmEvents && { warm: () => send(warmEvents) }),
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
export function transportAlone(origin: string, path: string, events: readonly HandEvent[], warmEvents?: readonly HandEvent[]): Contender {
  const encode = (xs: readonly HandEvent[]): Buffer[] => batches(xs, BSP_BATCH).map((chunk) => Buffer.from(JSON.stringify({ data: chunk })));
  const bodies = encode(events);
  const warmBodies = warmEvents && encode(warmEvents);
  let pool: Pool | undefined;
  const send = async (bs: readonly Buffer[]): Promise<void> => {
    for (const body of bs) await post(pool as Pool, path, body, 'transport');
  };
  return {
    name: 'transport alone (prebuilt bodies)',
    expected: events.length,
    setup() {
      pool = new Pool(origin, { connections: 1, pipelining: 1 });
    },
    run: () => send(bodies),
    ...(warmBodies && { warm: () => send(warmBodies) }),
    async teardown() {
      await pool?.close();
    },
  };
}
