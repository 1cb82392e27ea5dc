// Loopback intake for the benchmark, run as a child process (fork) so that its CPU is not
// charged to the exporting process. It answers as soon as a body is read and counts events with
// a byte scan instead of JSON.parse: parsing ~100 MB/s would steal a whole core of this 2-core
// machine from the contenders. `verify` mode parses too, to prove the scan counts right.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD_FLAG = '--bench-sink-child';

export interface SinkStats {
  requests: number;
  /** Pipeline events (/api/v2/ci/pipeline) or spans (/v1/traces). */
  events: number;
  /** Request body bytes as received. */
  bytes: number;
  /** Bodies that failed JSON.parse or whose parsed count differed from the scan (verify mode). */
  mismatches: number;
  statuses: Record<string, number>;
}

export type SinkCommand = { cmd: 'reset'; id: number; verify?: boolean } | { cmd: 'stats'; id: number };
export type SinkMessage = { port: number } | { id: number; stats: SinkStats };

// One per event: only a pipeline event's resource has "level". One per OTLP/JSON span:
// "parentSpanId" does not match because of the capital S.
const PIPELINE_MARK = Buffer.from('"level":"');
const SPAN_MARK = Buffer.from('"spanId":"');

function countMarks(body: Buffer, mark: Buffer): number {
  let n = 0;
  let i = body.indexOf(mark);
  while (i !== -1) {
    n++;
    i = body.indexOf(mark, i + mark.length);
  }
  return n;
}

function parsedCount(body: Buffer, isTraces: boolean): number {
  const doc = JSON.parse(body.toString('utf8')) as {
    data?: unknown;
    resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }>;
  };
  if (!isTraces) return Array.isArray(doc.data) ? doc.data.length : doc.data ? 1 : 0;
  let n = 0;
  for (const rs of doc.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) n += ss.spans?.length ?? 0;
  return n;
}

function main(): void {
  let stats: SinkStats;
  let verify = false;
  const reset = (): void => {
    stats = { requests: 0, events: 0, bytes: 0, mismatches: 0, statuses: {} };
  };
  reset();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
    });
    req.on('end', () => {
      const isTraces = req.url === '/v1/traces';
      const isPipeline = req.url === '/api/v2/ci/pipeline';
      let status = 404;
      let body = '';
      if (req.method === 'POST' && (isTraces || isPipeline)) {
        const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
        const n = countMarks(buf, isTraces ? SPAN_MARK : PIPELINE_MARK);
        if (verify) {
          try {
            if (parsedCount(buf, isTraces) !== n) stats.mismatches++;
          } catch {
            stats.mismatches++;
          }
        }
        stats.requests++;
        stats.events += n;
        stats.bytes += size;
        // OTLP/HTTP answers 200 with an ExportTraceServiceResponse; Datadog 202 {"data":null}.
        status = isTraces ? 200 : 202;
        body = isTraces ? '{}' : '{"data":null}';
      }
      stats.statuses[status] = (stats.statuses[status] ?? 0) + 1;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  // Clients keep connections open between rounds; the defaults (5 s) would close them mid-bench.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port } satisfies SinkMessage);
  });
  process.on('message', (m: SinkCommand) => {
    // Both answer with the counters so far: a reset is acknowledged before the next run starts.
    process.send?.({ id: m.id, stats } satisfies SinkMessage);
    if (m.cmd === 'reset') {
      reset();
      verify = m.verify ?? false;
    }
  });
  // The parent's death closes the IPC channel: never outlive it.
  process.on('disconnect', () => process.exit(0));
}

/** True in the forked child. When the bench is bundled into one file (to profile it with real
 * line numbers), the child runs that whole file, so run.ts must not start a bench there. */
export const isSinkChild = process.argv.includes(CHILD_FLAG);

// Only the forked child serves; the parent imports this module for startSink().
if (isSinkChild) main();

/** A running sink child and the means to read and reset its counters. */
export interface Sink {
  port: number;
  pipelineUrl: string;
  tracesUrl: string;
  /** Zeroes the counters; resolves once the child has done so. */
  reset(verify?: boolean): Promise<SinkStats>;
  stats(): Promise<SinkStats>;
  close(): void;
}

export async function startSink(): Promise<Sink> {
  // fork() reuses this process's execArgv, i.e. the tsx loader, so the child runs this .ts file.
  const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`sink exited early (${code})`)));
    child.once('message', (m: SinkMessage) => {
      if ('port' in m) resolve(m.port);
    });
  });
  child.removeAllListeners('exit');
  child.removeAllListeners('error');
  const waiting = new Map<number, (s: SinkStats) => void>();
  let nextId = 1;
  child.on('message', (m: SinkMessage) => {
    if ('id' in m) {
      const done = waiting.get(m.id);
      waiting.delete(m.id);
      done?.(m.stats);
    }
  });
  // The IPC channel would otherwise keep the bench alive after its last line.
  child.unref();
  child.channel?.unref();
  const ask = (make: (id: number) => SinkCommand): Promise<SinkStats> => {
    const id = nextId++;
    child.channel?.ref();
    return new Promise<SinkStats>((resolve) => {
      waiting.set(id, (s) => {
        if (waiting.size === 0) child.channel?.unref();
        resolve(s);
      });
      child.send(make(id));
    });
  };
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    pipelineUrl: `${base}/api/v2/ci/pipeline`,
    tracesUrl: `${base}/v1/traces`,
    reset(verify = false) {
      return ask((id) => ({ cmd: 'reset', id, verify }));
    },
    stats() {
      return ask((id) => ({ cmd: 'stats', id }));
    },
    close() {
      child.kill();
    },
  };
}
