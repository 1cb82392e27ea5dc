// The tests', the demo's and the benchmark's intake: the shipped one (src/intake/: validates every
// body with the official schema and the prose rules, serves the pipeline page) on 127.0.0.1,
// plus what tests need on top: every request recorded, accepted events in arrival order, waiting
// for a count, and scriptable faults (statuses, resets, hangs, delays) through the core's
// `answer` hook. One intake, not two: only the faults and the recording live here.
import type { IncomingMessage } from 'node:http';
import { formatProblem } from '../src/intake/problems.js';
import { INTAKE_PATH, startIntakeServer, type IntakeServer, type ReceivedRequest } from '../src/intake/server.js';
import { schemaValidator } from '../src/intake/validate.js';

export { INTAKE_PATH, schemaValidator };

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
  /** Schema and prose-rule violations, one line each (event and field named); a request with any is answered 400. */
  errors: string[];
  notes: string[];
  /** The status the intake answered with, or a fault name. */
  outcome?: number | 'reset' | 'reset-mid-response' | 'hang';
  /** What the core intake read and checked. */
  received: ReceivedRequest;
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
  /** Origin, e.g. http://127.0.0.1:41234 (the pipeline page is at /) */
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
  /** The shipped intake underneath (its page store, its server). */
  core: IntakeServer;
  close(): Promise<void>;
}

export async function startIntake(options: IntakeOptions = {}): Promise<Intake> {
  const record = options.record ?? true;
  let respond = options.respond;
  const requests: IntakeRequest[] = [];
  const events: IntakeEvent[] = [];
  const invalid: IntakeRequest[] = [];
  const byReceived = new WeakMap<ReceivedRequest, IntakeRequest>();
  let accepted = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];

  const core = await startIntakeServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    validate: options.validate ?? true,
    keep: record,
    ...(options.now ? { now: options.now } : {}),
    hooks: {
      async answer(rec, req, res) {
        const r: IntakeRequest = {
          index: rec.seq,
          method: rec.method,
          path: rec.path,
          headers: rec.headers,
          wireBytes: rec.wireBytes,
          bodyBytes: rec.bodyBytes,
          body: rec.body,
          events: rec.events as IntakeEvent[],
          errors: rec.problems.map((p) => formatProblem(p, rec.events)),
          notes: rec.notes.map((p) => formatProblem(p, rec.events)),
          received: rec,
        };
        if (rec.defaultAnswer.status === 413) r.errors.push('body too large');
        byReceived.set(rec, r);
        if (record) requests.push(r);
        if (r.errors.length > 0) invalid.push(r);

        let action = await respond?.(r);
        while (action && 'delayMs' in action) {
          const wait = action.delayMs;
          await new Promise((f) => setTimeout(f, wait));
          action = action.then;
        }
        if (!action) return undefined;
        if ('reset' in action) {
          r.outcome = 'reset';
          req.socket.destroy();
          return 'handled';
        }
        if ('hang' in action) {
          r.outcome = 'hang';
          return 'handled';
        }
        if ('resetMidResponse' in action) {
          r.outcome = 'reset-mid-response';
          res.writeHead(202, { 'content-type': 'application/json', 'content-length': '100' });
          res.write('{"data":');
          setTimeout(() => req.socket.destroy(), 5);
          return 'handled';
        }
        return action;
      },
      answered(rec, status) {
        const r = byReceived.get(rec);
        if (r) r.outcome = status;
        if (status < 200 || status >= 300) return;
        accepted += rec.events.length;
        if (record) events.push(...(rec.events as IntakeEvent[]));
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i]!;
          if (accepted >= w.n) {
            waiters.splice(i, 1);
            w.resolve();
          }
        }
      },
    },
  });

  return {
    url: core.url,
    endpoint: core.endpoint,
    requests,
    events,
    invalid,
    core,
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
    close: () => core.close(),
  };
}
