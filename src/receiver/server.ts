// The OTLP/HTTP receiver: a node:http server in front of the exporter. Routes, answers per the
// OTLP/HTTP specification (every 4xx/5xx body a google.rpc.Status in the request's encoding),
// bearer-token auth, timeouts, a connection cap, a cap on request bodies held at once,
// backpressure from the exporter's own counters, /healthz, /metrics and draining.
// decode → convert → consume; the limits come first (limits.ts).
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { DROP_REASONS, type Counters } from '../diagnostics.js';
import type { ExportResult, ReadableSpanLike } from '../otel-types.js';
import { convertRequest } from './convert.js';
import { decodeJson } from './decode-json.js';
import { decodeProto, type DecodedRequest } from './decode-proto.js';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ELEMENTS, RequestError, decompress, parseContentEncoding, readBody } from './limits.js';
import { otlpTypes } from './proto.js';

/** What the receiver needs of the exporter (DatadogCIPipelineExporter fits). */
export interface ReceiverSink {
  export(spans: ReadableSpanLike[], resultCallback: (result: ExportResult) => void): void;
  getCounters(): Counters;
  shutdown(): Promise<void>;
}

export interface ReceiverOptions {
  host?: string;
  port?: number;
  /** With a token, POST /v1/traces needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  /** Body limit, on the wire and after decompression (default 20 MiB). */
  maxBodyBytes?: number;
  /** Messages / JSON containers one request may decode into (default 500,000). */
  maxElements?: number;
  /** Time to receive a request's headers (default 10 s). */
  headersTimeoutMs?: number;
  /** Time to receive a whole request (default 30 s). */
  requestTimeoutMs?: number;
  /** Open connections at once (default 256); more are refused by the listener. */
  maxConnections?: number;
  /** Request bytes (raw and decompressed) held at once across requests (default 4 × maxBodyBytes). */
  maxBufferedBytes?: number;
  /**
   * Spans handed to the exporter and not yet settled, and ready events queued in it, above which
   * requests get 429 + Retry-After (default 100,000: the exporter's maxQueuedEvents default).
   */
  maxBacklog?: number;
  /** Upper bound of the wait for requests in progress when draining (default 2 s). */
  drainGraceMs?: number;
  /** Where lines go (default stderr). Never given a request body or a token. */
  log?: (line: string) => void;
}

type Encoding = 'proto' | 'json';

/** HTTP status → google.rpc.Code. */
const RPC_CODE: Record<number, number> = { 400: 3, 401: 16, 404: 5, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14, 500: 13 };
const CONTENT_TYPE: Record<Encoding, string> = { proto: 'application/x-protobuf', json: 'application/json' };
const TRACES_PATH = '/v1/traces';
const RETRY_AFTER_S = '1';

function mediaType(header: string | undefined): Encoding | undefined {
  const v = (header ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (v === 'application/x-protobuf' || v === 'application/protobuf') return 'proto';
  if (v === 'application/json') return 'json';
  return undefined;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export class Receiver {
  readonly server: Server;
  private readonly opts: Required<Omit<ReceiverOptions, 'token' | 'log'>>;
  private readonly tokenDigest: Buffer | undefined;
  private readonly log: (line: string) => void;
  private draining = false;
  private drainPromise: Promise<void> | undefined;
  private readonly sockets = new Set<Socket>();
  /** Requests being read, decoded or answered. */
  private active = 0;
  private idle: Array<() => void> = [];
  private buffered = 0;
  /** Spans handed to the exporter whose export callback has not fired. */
  private backlog = 0;
  private readonly said = new Set<string>();
  readonly stats = {
    requests: new Map<number, number>(),
    spansReceived: 0,
    spansRejected: 0,
    bytesReceived: 0,
  };

  constructor(
    private readonly sink: ReceiverSink,
    options: ReceiverOptions = {},
  ) {
    const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.opts = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 4318,
      maxBodyBytes,
      maxElements: options.maxElements ?? DEFAULT_MAX_ELEMENTS,
      headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      maxConnections: options.maxConnections ?? 256,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 * maxBodyBytes,
      maxBacklog: options.maxBacklog ?? 100_000,
      drainGraceMs: options.drainGraceMs ?? 2_000,
    };
    this.tokenDigest = options.token ? digest(`Bearer ${options.token}`) : undefined;
    this.log = options.log ?? ((line) => process.stderr.write(`datadog-ci-pipeline-exporter serve: ${line}\n`));
    const headersTimeout = this.opts.headersTimeoutMs;
    this.server = createServer(
      {
        headersTimeout,
        requestTimeout: Math.max(this.opts.requestTimeoutMs, headersTimeout),
        // Node checks both timeouts on this interval (30 s by default): a 10 s limit needs finer.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4))),
        keepAliveTimeout: 5_000,
      },
      (req, res) => this.handle(req, res),
    );
    this.server.maxConnections = this.opts.maxConnections;
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // Malformed HTTP, or headers/request not received in time (a slow client). A reset by
      // the client is no request to answer or count.
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const code = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const reason = code === 408 ? 'Request Timeout' : code === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
      this.count(code);
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /** Starts listening; resolves with the bound address once requests are accepted. */
  listen(): Promise<{ host: string; port: number; url: string }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject);
        const a = this.server.address() as AddressInfo;
        const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ host, port: a.port, url: `http://${host}:${a.port}` });
      });
    });
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Stops taking spans, lets requests in progress finish (up to drainGraceMs: their spans are
   * then the exporter's), shuts the exporter down (it delivers or spools everything within its
   * shutdownTimeoutMs), then closes the listener and the connections. The listener stays open
   * meanwhile so that the drain is visible: /healthz answers 503 (a load balancer or an
   * orchestrator's probe takes the instance out), POSTs 503 + Retry-After (the collector keeps
   * the spans and retries them elsewhere or later), /metrics shows the queue emptying.
   */
  drain(): Promise<void> {
    this.drainPromise ??= this.doDrain();
    return this.drainPromise;
  }

  private async doDrain(): Promise<void> {
    this.draining = true;
    // Idle keep-alive connections go now: a client's next request opens a new connection and
    // reads the 503 with `Connection: close`.
    this.server.closeIdleConnections();
    if (this.active > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.drainGraceMs);
        timer.unref();
        this.idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    try {
      await this.sink.shutdown();
    } finally {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
      await closed;
    }
  }

  private count(status: number): void {
    this.stats.requests.set(status, (this.stats.requests.get(status) ?? 0) + 1);
  }

  /** One line per kind of refusal (the counters in /metrics keep the totals); never a body. */
  private sayOnce(kind: string, line: string): void {
    if (this.said.has(kind) || this.said.size > 100) return;
    this.said.add(kind);
    this.log(line);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.active++;
    res.on('close', () => {
      if (--this.active === 0) for (const f of this.idle.splice(0)) f();
    });
    const path = (req.url ?? '').split('?', 1)[0];
    if (path === TRACES_PATH) {
      if (req.method !== 'POST') {
        req.resume();
        this.answerError(res, mediaType(req.headers['content-type']) ?? 'proto', new RequestError(405, 'use POST'), { Allow: 'POST' });
        return;
      }
      void this.traces(req, res).catch((err: unknown) => {
        this.sayOnce('internal', `internal error while receiving spans (please report it): ${err instanceof Error ? err.message : String(err)}`);
        this.answerError(res, 'proto', new RequestError(500, 'internal error'));
      });
      return;
    }
    req.resume();
    if (req.method === 'GET' && path === '/healthz') {
      const status = this.draining ? 503 : 200;
      this.count(status);
      const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
      if (this.draining) headers.Connection = 'close';
      res.writeHead(status, headers).end(this.draining ? 'draining\n' : 'ok\n');
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      this.count(200);
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(this.metrics());
      return;
    }
    this.answerError(res, mediaType(req.headers['content-type']) ?? 'proto', new RequestError(404, `no route for ${req.method ?? '?'} ${path === undefined ? '' : path.slice(0, 100)}; OTLP traces go to POST ${TRACES_PATH}`));
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.tokenDigest) return true;
    const given = req.headers.authorization;
    // Digests have one length, so the comparison takes the same time whatever was sent.
    return typeof given === 'string' && timingSafeEqual(digest(given), this.tokenDigest);
  }

  private overloaded(): boolean {
    if (this.backlog >= this.opts.maxBacklog) return true;
    return this.sink.getCounters().queued >= this.opts.maxBacklog;
  }

  private async traces(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = mediaType(req.headers['content-type']);
    const enc: Encoding = type ?? 'proto';
    const refuse = (err: RequestError, headers?: Record<string, string>): void => {
      // The rest of the body is read and discarded, so the client can read the answer.
      req.resume();
      this.answerError(res, enc, err, headers);
    };
    if (this.draining) return refuse(new RequestError(503, 'the receiver is shutting down; retry'), { 'Retry-After': RETRY_AFTER_S, Connection: 'close' });
    if (!this.authorized(req)) return refuse(new RequestError(401, 'missing or wrong bearer token (Authorization: Bearer <token>)'));
    if (!type) return refuse(new RequestError(415, `content type ${JSON.stringify((req.headers['content-type'] ?? '').slice(0, 60))} is not supported: send application/x-protobuf or application/json`));
    const coding = parseContentEncoding(req.headers['content-encoding']);
    if (!coding) return refuse(new RequestError(415, `content encoding ${JSON.stringify((req.headers['content-encoding'] ?? '').slice(0, 40))} is not supported: send gzip, deflate or none`));
    if (this.overloaded()) return refuse(new RequestError(429, 'the receiver is behind on delivery; retry later'), { 'Retry-After': RETRY_AFTER_S });

    let held = 0;
    const reserve = (n: number): boolean => {
      if (this.buffered + n > this.opts.maxBufferedBytes) return false;
      this.buffered += n;
      held += n;
      return true;
    };
    try {
      const read = await readBody(req, this.opts.maxBodyBytes, reserve);
      if (!read.ok) {
        const headers: Record<string, string> | undefined = read.error.status === 503 ? { 'Retry-After': RETRY_AFTER_S } : undefined;
        return refuse(read.error, headers);
      }
      this.stats.bytesReceived += read.body.length;
      const raw = await decompress(read.body, coding, this.opts.maxBodyBytes);
      if (raw !== read.body && !reserve(raw.length)) {
        return refuse(new RequestError(503, 'the receiver holds too many request bodies at once; retry later'), { 'Retry-After': RETRY_AFTER_S });
      }
      if (this.draining) return refuse(new RequestError(503, 'the receiver is shutting down; retry'), { 'Retry-After': RETRY_AFTER_S, Connection: 'close' });
      // Decode and convert in one turn: the decoded tree lives only until the spans are made.
      const decoded: DecodedRequest = type === 'proto' ? decodeProto(raw, this.opts.maxElements) : decodeJson(raw, this.opts.maxElements);
      const { spans, rejected, firstProblem } = convertRequest(decoded);
      this.stats.spansReceived += spans.length;
      this.stats.spansRejected += rejected;
      if (rejected > 0) this.sayOnce('rejected', `rejected ${rejected} span(s) of a request (/metrics counts them all); first: ${firstProblem ?? '?'}`);
      // The answer goes out before the exporter takes the spans (in this same turn, so the next
      // request still sees the backlog they add): the answer depends only on the decode, and the
      // client prepares its next request while the exporter works instead of waiting for it.
      this.answerOk(res, enc, rejected, rejected > 0 ? `${rejected} span(s) rejected; first: ${firstProblem ?? '?'}` : '');
      if (spans.length > 0) this.consume(spans);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      refuse(err);
    } finally {
      this.buffered -= held;
    }
  }

  private consume(spans: ReadableSpanLike[]): void {
    const n = spans.length;
    this.backlog += n;
    let done = false;
    const settle = (): void => {
      if (done) return;
      done = true;
      this.backlog -= n;
    };
    try {
      this.sink.export(spans, settle);
    } catch (err) {
      // The exporter catches its own errors; were one to escape, the request is answered already.
      settle();
      this.sayOnce('internal-export', `internal error while exporting received spans (please report it): ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private answerOk(res: ServerResponse, enc: Encoding, rejected: number, message: string): void {
    this.count(200);
    let body: Uint8Array | string;
    if (enc === 'json') {
      body = rejected > 0 ? JSON.stringify({ partialSuccess: { rejectedSpans: String(rejected), errorMessage: message } }) : '{}';
    } else {
      const { response } = otlpTypes();
      body = response.encode(rejected > 0 ? { partialSuccess: { rejectedSpans: rejected, errorMessage: message } } : {}).finish();
    }
    res.writeHead(200, { 'Content-Type': CONTENT_TYPE[enc], 'Content-Length': Buffer.byteLength(body) }).end(body);
  }

  private answerError(res: ServerResponse, enc: Encoding, err: RequestError, headers: Record<string, string> = {}): void {
    this.count(err.status);
    if (res.headersSent || res.destroyed) return;
    if (err.status >= 400 && err.status !== 401 && err.status !== 404) this.sayOnce(`status:${err.status}`, `answered ${err.status}: ${err.message} (further ones are counted in /metrics)`);
    const status = { code: RPC_CODE[err.status] ?? 2, message: err.message };
    const body: Uint8Array | string = enc === 'json' ? JSON.stringify(status) : otlpTypes().status.encode(status).finish();
    res.writeHead(err.status, { ...headers, 'Content-Type': CONTENT_TYPE[enc], 'Content-Length': Buffer.byteLength(body) }).end(body);
  }

  /** Prometheus text format: the receiver's counters and the exporter's. */
  metrics(): string {
    const c = this.sink.getCounters();
    const p = 'datadog_ci_pipeline';
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: Array<[string, number]>): void => {
      lines.push(`# HELP ${p}_${name} ${help}`, `# TYPE ${p}_${name} ${type}`);
      for (const [labels, v] of samples) lines.push(`${p}_${name}${labels} ${v}`);
    };
    metric('serve_requests_total', 'counter', 'HTTP requests answered, by status code.', [...this.stats.requests].sort((a, b) => a[0] - b[0]).map(([code, n]) => [`{code="${code}"}`, n]));
    metric('serve_spans_received_total', 'counter', 'Spans received and handed to the exporter.', [['', this.stats.spansReceived]]);
    metric('serve_spans_rejected_total', 'counter', 'Spans refused by the receiver (partial_success.rejected_spans).', [['', this.stats.spansRejected]]);
    metric('serve_received_bytes_total', 'counter', 'Request body bytes received (on the wire).', [['', this.stats.bytesReceived]]);
    metric('serve_backlog_spans', 'gauge', 'Spans handed to the exporter and not yet settled.', [['', this.backlog]]);
    metric('serve_connections', 'gauge', 'Open connections.', [['', this.sockets.size]]);
    metric('serve_draining', 'gauge', '1 while shutting down.', [['', this.draining ? 1 : 0]]);
    metric('events_ready_total', 'counter', 'Events built, validated and handed to delivery.', [['', c.eventsReady]]);
    metric('events_sent_total', 'counter', 'Events Datadog accepted.', [['', c.eventsSent]]);
    metric('events_spooled_total', 'counter', 'Events written to the spool directory.', [['', c.spooled]]);
    metric('events_dropped_total', 'counter', 'Events (or spans) dropped, by reason.', DROP_REASONS.map((r) => [`{reason="${r}"}`, c.dropped[r] ?? 0]));
    metric('requests_total', 'counter', 'HTTP requests made to Datadog.', [['', c.requests]]);
    metric('queue_depth', 'gauge', 'Ready events not yet settled (queued or in flight).', [['', c.queued]]);
    metric('pending_spans', 'gauge', 'Spans held, waiting for their ancestors.', [['', c.pending]]);
    return `${lines.join('\n')}\n`;
  }
}
