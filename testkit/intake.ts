// A real Datadog-like intake for tests, the demo and benchmarks: an HTTP server on 127.0.0.1
// that validates every request body against the official schema (Ajv 2020 + ajv-formats) and the
// prose-only rules, records what it accepted, and can be scripted to answer with faults.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { checkProseRules } from './prose-rules.js';

export const INTAKE_PATH = '/api/v2/ci/pipeline';

type Validate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };

let validator: Validate | undefined;
/** The schema validator, compiled once per process. */
export function schemaValidator(): Validate {
  if (validator) return validator;
  const require = createRequire(import.meta.url);
  // CJS packages: their default export is the class/function itself.
  const Ajv2020 = require('ajv/dist/2020').default as new (o: object) => { compile(s: object): Validate };
  const addFormats = require('ajv-formats').default as (ajv: object) => void;
  const schema = JSON.parse(
    readFileSync(new URL('../test/fixtures/pipeline-event-request.schema.json', import.meta.url), 'utf8'),
  ) as object;
  const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, strict: true });
  addFormats(ajv);
  validator = ajv.compile(schema);
  return validator;
}

/** One pipeline event as the intake saw it: the request's `data` item. */
export interface IntakeEvent {
  attributes: {
    resource: Record<string, unknown> & { level: string; name: string; status: string };
    env?: string;
    provider_name?: string;
    service?: string;
  };
  type?: string;
}

export interface IntakeRequest {
  /** 0-based order of arrival. */
  index: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** Bytes on the wire (before gunzip). */
  wireBytes: number;
  /** Bytes of the JSON body (after gunzip). */
  bodyBytes: number;
  body: unknown;
  events: IntakeEvent[];
  /** Schema and prose-rule violations; a request with any is answered 400. */
  errors: string[];
  notes: string[];
  /** The status the intake answered with, or a fault name. */
  outcome?: number | 'reset' | 'reset-mid-response' | 'hang';
}

/** What a scripted responder tells the intake to do with one request. */
export type IntakeAction =
  | { status: number; headers?: Record<string, string>; body?: unknown }
  /** Destroy the connection after reading the request, before any response byte. */
  | { reset: true }
  /** Send the status line, headers and part of a body, then destroy the connection. */
  | { resetMidResponse: true }
  /** Never answer (the connection is closed when the intake closes). */
  | { hang: true }
  /** Wait, then do `then` (or the default answer). */
  | { delayMs: number; then?: IntakeAction };

export type Responder = (req: IntakeRequest) => IntakeAction | undefined | Promise<IntakeAction | undefined>;

export interface IntakeOptions {
  /** Called for every request after it was read and validated; undefined → the default answer. */
  respond?: Responder;
  /** Reference time for the 18-hour rule (default: now at each request). */
  now?: () => number;
  /** Keep request bodies and events (default true). Benchmarks turn it off to count only. */
  record?: boolean;
  /** Validate bodies (default true). Benchmarks turn it off to measure the client only. */
  validate?: boolean;
  port?: number;
}

export interface Intake {
  /** Origin, e.g. http://127.0.0.1:41234 */
  url: string;
  /** The full endpoint to give the exporter: url + /api/v2/ci/pipeline */
  endpoint: string;
  requests: IntakeRequest[];
  /** Events of requests answered 2xx, in arrival order. */
  events: IntakeEvent[];
  /** Requests that failed validation. */
  invalid: IntakeRequest[];
  /** Count of events answered 2xx (kept even when record is false). */
  acceptedCount(): number;
  setResponder(r: Responder | undefined): void;
  /** Resolves once `n` events have been accepted (or rejects after timeoutMs). */
  waitForEvents(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startIntake(options: IntakeOptions = {}): Promise<Intake> {
  const record = options.record ?? true;
  const doValidate = options.validate ?? true;
  let respond = options.respond;
  const requests: IntakeRequest[] = [];
  const events: IntakeEvent[] = [];
  const invalid: IntakeRequest[] = [];
  let accepted = 0;
  let seq = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const validate = doValidate ? schemaValidator() : undefined;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      void handle(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, wire: Buffer): Promise<void> {
    const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire;
    const r: IntakeRequest = {
      index: seq++,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
      wireBytes: wire.length,
      bodyBytes: raw.length,
      body: undefined,
      events: [],
      errors: [],
      notes: [],
    };
    if (r.method !== 'POST' || r.path !== INTAKE_PATH) {
      r.errors.push(`unexpected ${r.method} ${r.path}`);
    } else {
      try {
        r.body = JSON.parse(raw.toString('utf8'));
        const data = (r.body as { data?: unknown }).data;
        r.events = (Array.isArray(data) ? data : data ? [data] : []) as IntakeEvent[];
      } catch {
        r.errors.push('body is not JSON');
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
        r.errors.push('Content-Type is not application/json');
      }
      if (validate && r.errors.length === 0) {
        if (!validate(r.body)) {
          for (const e of validate.errors ?? []) r.errors.push(`schema: ${e.instancePath} ${e.message ?? ''}`);
        }
        const prose = checkProseRules(r.body, options.now?.() ?? Date.now());
        r.errors.push(...prose.errors);
        r.notes.push(...prose.notes);
      }
    }
    if (record) requests.push(r);
    if (r.errors.length > 0) invalid.push(r);

    let action = await respond?.(r);
    for (;;) {
      if (action && 'delayMs' in action) {
        await new Promise((f) => setTimeout(f, action && 'delayMs' in action ? action.delayMs : 0));
        action = action.then;
        continue;
      }
      break;
    }
    if (!action) {
      action =
        r.errors.length > 0
          ? { status: 400, body: { errors: r.errors.map((detail) => ({ status: '400', title: 'Bad Request', detail })) } }
          : { status: 202, body: { data: null } };
    }
    if ('reset' in action) {
      r.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    if ('hang' in action) {
      r.outcome = 'hang';
      return;
    }
    if ('resetMidResponse' in action) {
      r.outcome = 'reset-mid-response';
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"data":');
      setTimeout(() => req.socket.destroy(), 5);
      return;
    }
    if (!('status' in action)) return;
    r.outcome = action.status;
    const payload = action.body === undefined ? '' : typeof action.body === 'string' ? action.body : JSON.stringify(action.body);
    res.writeHead(action.status, { 'content-type': 'application/vnd.api+json', ...action.headers });
    res.end(payload);
    if (action.status >= 200 && action.status < 300) {
      accepted += r.events.length;
      if (record) events.push(...r.events);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!;
        if (accepted >= w.n) {
          waiters.splice(i, 1);
          w.resolve();
        }
      }
    }
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    endpoint: url + INTAKE_PATH,
    requests,
    events,
    invalid,
    acceptedCount: () => accepted,
    setResponder(r) {
      respond = r;
    },
    waitForEvents(n, timeoutMs = 10_000) {
      if (accepted >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`intake: ${accepted}/${n} events after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
