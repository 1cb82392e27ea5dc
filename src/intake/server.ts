// The local intake: an HTTP server that stands in for Datadog's `POST /api/v2/ci/pipeline`
// (validates every body like Datadog: the official schema and the prose rules; answers 202 or a
// 400 that names the event and the field) and serves a page that draws what it received.
//
// Routes: POST /api/v2/ci/pipeline, GET / (the page), GET /api/intake/snapshot?since=<revision>
// (what the page polls), GET /healthz. Everything the page needs is inline: no external network.
//
// Test hooks: `hooks.answer` may replace the answer to any intake POST (scripted 429s, resets,
// hangs: testkit/intake.ts builds its faults on it) and `hooks.answered` hears the final status.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { quote } from '../diagnostics.js';
import { formatProblem, toApiError, type Problem } from './problems.js';
import { eventsOf } from './prose-rules.js';
import { DEFAULT_STORE_LIMITS, PipelineStore, type StoreLimits } from './store.js';
import { schemaValidator, validateBody } from './validate.js';
import { pageHtml } from './page.js';

export const INTAKE_PATH = '/api/v2/ci/pipeline';
export const SNAPSHOT_PATH = '/api/intake/snapshot';
export const DEFAULT_INTAKE_PORT = 8126;
/** Largest body read (after decompression too). The spec gives no limit; Datadog answers 413 above its own. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** One POST to the intake path, read and checked. */
export interface ReceivedRequest {
  /** 0-based order in which bodies were fully read. */
  seq: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** Bytes on the wire (before gunzip). */
  wireBytes: number;
  /** Bytes of the JSON body (after gunzip); the bytes read so far when the body was too large. */
  bodyBytes: number;
  /** The parsed JSON body (undefined when it was not JSON or too large). */
  body: unknown;
  /** The `data` items (one object is a list of one). */
  events: unknown[];
  /** Why the request would be rejected: schema, prose rules, or the request itself (event: null). */
  problems: Problem[];
  /** Spec wishes the API does not enforce (git with neither tag nor branch). */
  notes: Problem[];
  /** What the intake answers unless a hook says otherwise: 202, 400 with errors, or 413. */
  defaultAnswer: Answer;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless a string. */
  body?: unknown;
}

export interface IntakeHooks {
  /** Replaces the answer (undefined: the default; 'handled': the hook answered or dropped the connection itself). */
  answer?: (
    received: ReceivedRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ) => Answer | 'handled' | undefined | Promise<Answer | 'handled' | undefined>;
  /** After an answer was written (not called for 'handled'). */
  answered?: (received: ReceivedRequest, status: number) => void;
}

export interface IntakeServerOptions {
  /** Default 127.0.0.1: the intake has no authentication. */
  host?: string;
  /** Default 8126; 0 picks a free port. */
  port?: number;
  /** Reference time for the 18-hour rule (default: now at each request). */
  now?: () => number;
  /** Validate bodies (default true). */
  validate?: boolean;
  /** Keep pipelines for the page (default true). */
  keep?: boolean;
  limits?: Partial<StoreLimits>;
  maxBodyBytes?: number;
  hooks?: IntakeHooks;
}

export interface IntakeServer {
  /** Origin, e.g. http://127.0.0.1:8126 */
  url: string;
  /** url + /api/v2/ci/pipeline: what to give the exporter as `endpoint`. */
  endpoint: string;
  host: string;
  port: number;
  store: PipelineStore;
  server: Server;
  close(): Promise<void>;
}

const JSON_API = 'application/vnd.api+json';

function send(res: ServerResponse, a: Answer): void {
  const payload = a.body === undefined ? '' : typeof a.body === 'string' ? a.body : JSON.stringify(a.body);
  res.writeHead(a.status, { 'content-type': JSON_API, ...a.headers });
  res.end(payload);
}

function errorAnswer(status: number, title: string, detail: string, headers?: Record<string, string>): Answer {
  return { status, headers, body: { errors: [{ status: String(status), title, detail }] } };
}

/** The answer Datadog would give to a checked body. */
export function defaultAnswerFor(problems: readonly Problem[], events: readonly unknown[]): Answer {
  if (problems.length === 0) return { status: 202, body: { data: null } };
  return { status: 400, body: { errors: problems.map((p) => toApiError(p, events)) } };
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startIntakeServer(options: IntakeServerOptions = {}): Promise<IntakeServer> {
  const doValidate = options.validate ?? true;
  const keep = options.keep ?? true;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const hooks = options.hooks ?? {};
  const store = new PipelineStore({ ...DEFAULT_STORE_LIMITS, ...options.limits });
  const sockets = new Set<Socket>();
  let seq = 0;
  // Compile the schema before listening: the first request must not wait for it (and time out).
  if (doValidate) schemaValidator();
  let page: string | undefined;

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === INTAKE_PATH) {
      if (req.method !== 'POST') {
        req.resume();
        send(res, errorAnswer(405, 'Method Not Allowed', `use POST for ${INTAKE_PATH}`, { allow: 'POST' }));
        return;
      }
      readBody(req, res);
      return;
    }
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, errorAnswer(404, 'Not Found', `no route for ${quote(req.method, 10)} ${quote(path, 200)}`));
      return;
    }
    if (path === '/' || path === '/index.html') {
      page ??= pageHtml();
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        // The page and its data come from this server only: nothing is loaded from elsewhere.
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        'x-content-type-options': 'nosniff',
        'cache-control': 'no-store',
      });
      res.end(page);
    } else if (path === SNAPSHOT_PATH) {
      const param = new URL(req.url ?? '/', 'http://x').searchParams.get('since');
      const since = param === null || param === '' ? NaN : Number(param);
      const now = Date.now();
      const body =
        Number.isFinite(since) && since === store.currentRevision
          ? { revision: since, now, unchanged: true }
          : store.snapshot(now);
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      send(res, errorAnswer(404, 'Not Found', `no route for GET ${quote(path, 200)}; the page is at /`));
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function readBody(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let wireBytes = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      wireBytes += c.length;
      // Past the limit the rest is read and thrown away, so that the client reads the 413
      // instead of a reset connection.
      if (wireBytes > maxBody) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      const r = check(req, Buffer.concat(chunks), wireBytes, tooLarge);
      void answer(r, req, res).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  }

  function check(req: IncomingMessage, wire: Buffer, wireBytes: number, tooLarge: boolean): ReceivedRequest {
    const r: ReceivedRequest = {
      seq: seq++,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      wireBytes,
      bodyBytes: wire.length,
      body: undefined,
      events: [],
      problems: [],
      notes: [],
      defaultAnswer: { status: 202 },
    };
    const tooLargeAnswer = (): Answer =>
      errorAnswer(413, 'Payload Too Large', `the body is larger than this intake's limit of ${maxBody} bytes`);
    if (tooLarge) {
      r.defaultAnswer = tooLargeAnswer();
      return r;
    }
    let raw = wire;
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    try {
      if (encoding === 'gzip') raw = gunzipSync(wire, { maxOutputLength: maxBody });
      else if (encoding === 'deflate') raw = inflateSync(wire, { maxOutputLength: maxBody });
      else if (encoding !== 'identity') {
        r.problems.push({ event: null, pointer: '', message: `Content-Encoding ${quote(encoding, 40)} is not supported (gzip, deflate)` });
      }
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        r.defaultAnswer = tooLargeAnswer();
        return r;
      }
      r.problems.push({ event: null, pointer: '', message: `the body is not valid ${encoding}` });
    }
    r.bodyBytes = raw.length;
    if (r.problems.length === 0) {
      try {
        r.body = JSON.parse(raw.toString('utf8'));
        r.events = eventsOf(r.body);
      } catch {
        r.problems.push({ event: null, pointer: '', message: 'body is not JSON' });
      }
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
      r.problems.push({ event: null, pointer: '', message: `Content-Type is not application/json (got ${quote(req.headers['content-type'] ?? null, 60)})` });
    }
    if (doValidate && r.problems.length === 0) {
      const checked = validateBody(r.body, options.now?.() ?? Date.now());
      r.problems.push(...checked.problems);
      r.notes.push(...checked.notes);
    }
    r.defaultAnswer = defaultAnswerFor(r.problems, r.events);
    return r;
  }

  async function answer(r: ReceivedRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const hooked = hooks.answer ? await hooks.answer(r, req, res) : undefined;
    if (hooked === 'handled') {
      if (keep) store.otherAnswer();
      return;
    }
    const a = hooked ?? r.defaultAnswer;
    send(res, a);
    if (keep) {
      const at = Date.now();
      if (a.status >= 200 && a.status < 300) store.accepted(r.seq, r.events, r.notes, at);
      else if (a.status === 400 && r.problems.length > 0) {
        store.rejectedRequest(r.seq, r.events, r.problems, r.problems.map((p) => formatProblem(p, r.events)), at);
      } else store.otherAnswer();
    }
    hooks.answered?.(r, a.status);
  }

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_INTAKE_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${hostForUrl(host)}:${port}`;
  return {
    url,
    endpoint: url + INTAKE_PATH,
    host,
    port,
    store,
    server,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
