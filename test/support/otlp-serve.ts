// serve's tests: an in-process receiver (the same Receiver the bin runs) in front of a real
// exporter and the validating intake; real OTLP/HTTP exporters of the SDK as its clients; raw
// HTTP for what real exporters never send; pipelines as SpanSpec trees and a check that each
// arrived whole, once, and linked.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { Attributes } from '@opentelemetry/api';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DatadogCIPipelineExporter, type DatadogCIPipelineExporterOptions } from '../../src/index.js';
import { Receiver, type ReceiverOptions } from '../../src/receiver/server.js';
import { startIntake, type Intake } from '../../testkit/intake.js';
import { ci, endInterleaved, openTree, type OpenTree, type SpanSpec, uuidOfSpan, uuidOfTrace } from './trace-helpers.js';

export interface Serve {
  intake: Intake;
  exporter: DatadogCIPipelineExporter;
  receiver: Receiver;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Lines the exporter and the receiver logged. */
  lines: string[];
  close(): Promise<void>;
}

export async function startServe(t: TestContext | undefined, o: { receiver?: ReceiverOptions; exporter?: DatadogCIPipelineExporterOptions; intake?: Intake } = {}): Promise<Serve> {
  const intake = o.intake ?? (await startIntake());
  const lines: string[] = [];
  const exporter = new DatadogCIPipelineExporter({
    endpoint: intake.endpoint,
    logger: (l) => lines.push(l),
    flushTimeoutMs: 10_000,
    shutdownTimeoutMs: 10_000,
    ...o.exporter,
  });
  const receiver = new Receiver(exporter, { port: 0, log: (l) => lines.push(l), ...o.receiver });
  const { url } = await receiver.listen();
  let closed: Promise<void> | undefined;
  const s: Serve = {
    intake,
    exporter,
    receiver,
    url,
    lines,
    close() {
      closed ??= (async () => {
        await receiver.drain();
        if (!o.intake) await intake.close();
      })();
      return closed;
    },
  };
  t?.after(() => s.close());
  return s;
}

export type ClientKind = 'proto' | 'json';

/** A real OTLP/HTTP exporter of the SDK (protobuf or JSON), optionally gzip. */
export function otlpExporter(url: string, kind: ClientKind, gzip: boolean, headers?: Record<string, string>): SpanExporter {
  const config = { url: `${url}/v1/traces`, compression: (gzip ? 'gzip' : 'none') as never, headers, timeoutMillis: 10_000 };
  return kind === 'proto' ? new ProtoExporter(config) : new JsonExporter(config);
}

/** A provider exporting through `exporter` in small batches, so traces cross requests. */
export function otlpProvider(exporter: SpanExporter, resource: Attributes = {}, batchSize = 7): BasicTracerProvider {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'ci-build', ...resource }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxExportBatchSize: batchSize, scheduledDelayMillis: 1, maxQueueSize: 100_000 })],
  });
}

/**
 * The pipelines of `specs` through a real OTLP exporter to `url`: opened, ended interleaved, and
 * flushed, so every span has been answered by the receiver when it resolves.
 */
export async function sendPipelines(url: string, kind: ClientKind, gzip: boolean, specs: SpanSpec[]): Promise<{ provider: BasicTracerProvider; trees: OpenTree[] }> {
  const provider = otlpProvider(otlpExporter(url, kind, gzip));
  const tracer = provider.getTracer('ci');
  const trees = specs.map((s) => openTree(tracer, s));
  endInterleaved(...trees);
  await provider.forceFlush();
  return { provider, trees };
}

/** A pipeline: `stages` × `jobs` × `steps`, names prefixed by `p` (unique across pipelines). */
export function pipelineSpec(p: string, stages = 2, jobs = 2, steps = 2, extra: Attributes = {}): SpanSpec {
  const start = Date.now() - 60_000;
  let t = start;
  const at = (): number => (t += 10);
  const spec: SpanSpec = { name: `${p}`, attributes: ci('pipeline', p, extra), startTime: at(), children: [] };
  for (let s = 0; s < stages; s++) {
    const stage: SpanSpec = { name: `${p}/s${s}`, attributes: ci('stage', `${p}/s${s}`), startTime: at(), children: [] };
    for (let j = 0; j < jobs; j++) {
      const job: SpanSpec = { name: `${p}/s${s}/j${j}`, attributes: ci('job', `${p}/s${s}/j${j}`), startTime: at(), children: [] };
      for (let k = 0; k < steps; k++) job.children!.push({ name: `${p}/s${s}/j${j}/k${k}`, attributes: ci('step', `${p}/s${s}/j${j}/k${k}`), startTime: at(), endTime: at() });
      job.endTime = at();
      stage.children!.push(job);
    }
    stage.endTime = at();
    spec.children!.push(stage);
  }
  spec.endTime = at();
  return spec;
}

export const spanCount = (spec: SpanSpec): number => 1 + (spec.children ?? []).reduce((n, c) => n + spanCount(c), 0);

/**
 * Every span of `tree` arrived exactly once at the intake, and each event names exactly its own
 * pipeline, stage and job (IDs derived from the spans the SDK made).
 */
export function assertPipelineArrived(intake: Intake, tree: OpenTree, spec: SpanSpec): void {
  const byName = new Map<string, Array<Record<string, unknown>>>();
  for (const e of intake.events) {
    const r = e.attributes.resource;
    const list = byName.get(r.name) ?? [];
    list.push(r);
    byName.set(r.name, list);
  }
  const pipelineSpan = tree.spans.get(spec.name)!;
  const pipelineId = uuidOfTrace(pipelineSpan.spanContext().traceId);
  const visit = (s: SpanSpec, stage?: SpanSpec, job?: SpanSpec): void => {
    const got = byName.get(s.name) ?? [];
    assert.equal(got.length, 1, `${s.name}: expected exactly one event, got ${got.length}`);
    const r = got[0]!;
    const level = (s.attributes ?? {})['ci.level'];
    assert.equal(r.level, level, `${s.name}: level`);
    if (level === 'pipeline') assert.equal(r.unique_id, pipelineId, `${s.name}: unique_id`);
    else {
      assert.equal(r.pipeline_unique_id, pipelineId, `${s.name}: pipeline_unique_id`);
      assert.equal(r.pipeline_name, spec.name, `${s.name}: pipeline_name`);
      assert.equal(r.id, uuidOfSpan(tree.spans.get(s.name)!), `${s.name}: id`);
      if (stage && level !== 'stage') {
        assert.equal(r.stage_id, uuidOfSpan(tree.spans.get(stage.name)!), `${s.name}: stage_id`);
        assert.equal(r.stage_name, stage.name, `${s.name}: stage_name`);
      }
      if (job && level === 'step') {
        assert.equal(r.job_id, uuidOfSpan(tree.spans.get(job.name)!), `${s.name}: job_id`);
        assert.equal(r.job_name, job.name, `${s.name}: job_name`);
      }
    }
    const lvl = (c: SpanSpec): unknown => (c.attributes ?? {})['ci.level'];
    for (const c of s.children ?? []) visit(c, lvl(s) === 'stage' ? s : stage, lvl(s) === 'job' ? s : job);
  };
  visit(spec);
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One raw HTTP request; resolves with the full answer. */
export function post(url: string, body: Buffer | string, headers: Record<string, string> = {}, method = 'POST', path = '/v1/traces'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method,
        // A chunked upload has no Content-Length.
        headers: headers['Transfer-Encoding'] ? headers : { 'Content-Length': String(Buffer.byteLength(body)), ...headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export const get = (url: string, path: string): Promise<Answer> => post(url, '', {}, 'GET', path);

/** What the real exporters put on the wire: a capturing server stands in for serve. */
export async function captureBodies(kind: ClientKind, gzip: boolean, spec: (i: number) => SpanSpec, pipelines: number): Promise<Array<{ body: Buffer; headers: Record<string, string> }>> {
  const got: Array<{ body: Buffer; headers: Record<string, string> }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = { 'content-type': String(req.headers['content-type']) };
      if (req.headers['content-encoding']) headers['content-encoding'] = String(req.headers['content-encoding']);
      got.push({ body: Buffer.concat(chunks), headers });
      res.writeHead(200, { 'Content-Type': String(req.headers['content-type']) }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = otlpProvider(otlpExporter(url, kind, gzip));
  const { runTree } = await import('./trace-helpers.js');
  const tracer = provider.getTracer('ci');
  for (let i = 0; i < pipelines; i++) runTree(tracer, spec(i));
  await provider.shutdown();
  await new Promise<void>((r) => server.close(() => r()));
  return got;
}

const BIN = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

/** The bin (from source, through tsx) as a child process: `serve` + args. */

export function startBin(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, ['--import', 'tsx', ...nodeArgs, BIN, 'serve', ...args], {
    env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)\n/.exec(stdout);
      if (m) resolve(m[1]!);
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`serve exited ${code} before listening: ${stderr}`)));
  });
  listening.catch(() => undefined);
  /**
   * With the heap probe loaded (startBin(…, { HEAP_PROBE_DIR }, HEAP_PROBE_ARGS)): the child's
   * memory after a full GC and, with `objects`, its live objects by constructor name (a heap
   * snapshot: seconds, and it leaves the child's RSS higher).
   */
  const heap = (o: { objects?: boolean } = {}): Promise<HeapReading> =>
    new Promise((resolve, reject) => {
      if (o.objects) writeFileSync(join(env.HEAP_PROBE_DIR!, 'want-snapshot'), '');
      const from = stderr.length;
      const timer = setTimeout(() => reject(new Error('no heap-probe line within 60 s (was the probe loaded?)')), 60_000);
      const onData = (): void => {
        const m = /heap-probe (\{.*\})\n/.exec(stderr.slice(from));
        if (!m) return;
        clearTimeout(timer);
        child.stderr.off('data', onData);
        const r = JSON.parse(m[1]!) as Omit<HeapReading, 'objects'> & { snapshot: string };
        let objects: Record<string, number> = {};
        if (r.snapshot) {
          objects = countObjects(readFileSync(r.snapshot, 'utf8'));
          rmSync(r.snapshot, { force: true });
        }
        resolve({ ...r, objects });
      };
      child.stderr.on('data', onData);
      child.kill('SIGUSR2');
    });
  return { child, listening, exited, heap, out: () => stdout, err: () => stderr };
}

/** Node arguments that load test/support/heap-probe.ts into a child started by startBin. */
export const HEAP_PROBE_ARGS = ['--expose-gc', '--import', fileURLToPath(new URL('./heap-probe.ts', import.meta.url))];

export interface HeapReading {
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  heapUsedBeforeGc: number;
  rssBeforeGc: number;
  gc: number;
  /** Live objects after GC by constructor name (heap snapshot nodes of type object); {} without HEAP_PROBE_DIR. */
  objects: Record<string, number>;
}

/** A V8 heap snapshot (JSON) → its nodes of type "object", counted by constructor name. */
function countObjects(json: string): Record<string, number> {
  const snap = JSON.parse(json) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const objectType = snap.snapshot.meta.node_types[0].indexOf('object');
  const counts: Record<string, number> = {};
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    if (snap.nodes[i + typeAt] !== objectType) continue;
    const name = snap.strings[snap.nodes[i + nameAt]!]!;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

