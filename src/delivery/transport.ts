// One HTTP POST of one body. No decisions here: the caller classifies what came back.
import { promisify } from 'node:util';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '../otel-types.js';
import type { Dispatcher } from 'undici';
import { secretRedactor } from '../diagnostics.js';
import { linkedTimeout } from './timers.js';
import { warmUpHttpParser } from './parser-warm-up.js';
import { loadUndici, type UndiciParts } from './undici.js';

/** zlib, loaded on the first gzip'd body only (gzip is off by default: one module less at start-up). */
let gzip: ((body: Buffer) => Promise<Buffer>) | undefined;
async function gzipped(body: Buffer): Promise<Buffer> {
  if (!gzip) {
    gzip = promisify((await import('node:zlib')).gzip);
  }
  return gzip(body);
}

/** Error bodies are only read for their `detail`; a larger one is cut (a hostile or broken server). */
const MAX_RESPONSE_BYTES = 64 * 1024;

export type PostResult =
  | { kind: 'response'; status: number; headers: Record<string, string | string[] | undefined>; body: string }
  /** No complete answer: connection refused or reset, DNS, timeout, response cut short. */
  | { kind: 'network'; error: string; code: string | undefined; timedOut: boolean }
  /** The caller's signal fired (shutdown): the outcome is unknown and no longer wanted. */
  | { kind: 'aborted' };

export interface TransportOptions {
  endpoint: string;
  /** See DeliveryConfig.proxy. */
  proxy?: string | false | undefined;
  /** A problem with the settings worth one message (the transport still works, directly). */
  onProblem?: (message: string) => void;
  apiKey: string | undefined;
  userAgent: string;
  gzip: boolean;
  maxConnections: number;
}

export interface Transport {
  /** Never rejects. */
  post(body: string | Buffer, timeoutMs: number, signal: AbortSignal): Promise<PostResult>;
  /** Prepares a body once so that retries send the same bytes (gzip runs once). */
  prepare(json: string | Buffer): Promise<Buffer | string>;
  close(): Promise<void>;
}

/** The lowercase variable wins over the uppercase one, as in curl and undici. */
function fromEnv(name: string): string | undefined {
  const v = process.env[name.toLowerCase()] ?? process.env[name.toUpperCase()];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** curl accepts `host:port` without a scheme; undici does not. */
function withScheme(url: string | undefined): string | undefined {
  return url === undefined || /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
}

/** The proxy to go through: settings and environment read once, when the transport is created. */
type ProxySettings = { httpProxy?: string; httpsProxy?: string; noProxy: string } | undefined;

function proxySettings(o: TransportOptions): ProxySettings {
  if (o.proxy === false) return undefined;
  if (typeof o.proxy === 'string') return { httpProxy: o.proxy, httpsProxy: o.proxy, noProxy: '' };
  const httpProxy = withScheme(fromEnv('http_proxy'));
  const httpsProxy = withScheme(fromEnv('https_proxy'));
  if (httpProxy === undefined && httpsProxy === undefined) return undefined;
  // Explicit values: the same variables, with a scheme added where curl would assume one.
  const env: { httpProxy?: string; httpsProxy?: string; noProxy: string } = { noProxy: fromEnv('no_proxy') ?? '' };
  if (httpProxy !== undefined) env.httpProxy = httpProxy;
  if (httpsProxy !== undefined) env.httpsProxy = httpsProxy;
  return env;
}

/**
 * A keep-alive agent, through a proxy when one is configured. CI runners behind a corporate
 * proxy set HTTPS_PROXY/NO_PROXY: undici's EnvHttpProxyAgent applies them the way curl does. It
 * is only used (and only loaded) when a proxy is in play, so the common case keeps a plain Agent.
 * A proxy setting undici cannot use is reported and ignored: telemetry never throws into the build.
 */
async function createDispatcher(u: UndiciParts, o: TransportOptions, proxy: ProxySettings): Promise<Dispatcher> {
  const options = {
    keepAliveTimeout: 4_000,
    connections: Math.max(1, o.maxConnections),
    // Timeouts are ours (per attempt, whole exchange); undici's would only cover parts of it.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  if (proxy === undefined) return new u.Agent(options);
  try {
    return new (await u.loadEnvHttpProxyAgent())({ ...options, ...proxy });
  } catch (err) {
    o.onProblem?.(
      `the proxy setting cannot be used (${(err as Error).message}); connecting directly. Check HTTPS_PROXY/HTTP_PROXY or the proxy option.`,
    );
    return new u.Agent(options);
  }
}

/** An error's text, whatever was thrown. */
function errorMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unknown error';
  }
}

export function createTransport(o: TransportOptions): Transport {
  // undici is loaded now, asynchronously (src/delivery/undici.ts), so that its load overlaps the
  // host's work after the exporter is built; the first post waits for it. The proxy settings are
  // read now, as before (the environment may change later).
  const proxy = proxySettings(o);
  const http = loadUndici().then(async (u) => ({ u, agent: await createDispatcher(u, o, proxy) }));
  http.catch(() => undefined); // the rejection is seen by post() and close()
  // So that V8's compile of undici's HTTP parser overlaps the build, not the process's exit.
  void warmUpHttpParser();
  // The endpoint as undici's request(url, ...) splits it (the options checked it is a URL).
  let origin: string | undefined;
  let path = '/';
  try {
    const url = new URL(o.endpoint);
    origin = url.origin;
    path = url.search ? `${url.pathname}${url.search}` : url.pathname;
  } catch {
    // post() reports it as a network error, as undici did
  }
  const redact = secretRedactor(o.apiKey);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'user-agent': o.userAgent,
  };
  if (o.apiKey !== undefined) headers['dd-api-key'] = o.apiKey;
  if (o.gzip) headers['content-encoding'] = 'gzip';

  async function send(body: string | Buffer, timeoutMs: number, signal: AbortSignal): Promise<PostResult> {
    if (signal.aborted) return { kind: 'aborted' };
    let h: { u: UndiciParts; agent: Dispatcher };
    try {
      // Before the attempt's clock starts: loading is local work, not the endpoint's time.
      h = await http;
      if (origin === undefined) throw new TypeError(`invalid url: ${o.endpoint}`);
    } catch (err) {
      return { kind: 'network', error: redact(errorMessage(err)), code: undefined, timedOut: false };
    }
    if (signal.aborted) return { kind: 'aborted' };
    const t = linkedTimeout(timeoutMs, signal);
    try {
      const res = await h.u.request.call(h.agent, { origin, path, method: 'POST', headers, body, signal: t.signal });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (size < MAX_RESPONSE_BYTES) chunks.push(chunk);
        size += chunk.length;
      }
      // A server that echoes request headers would put the key in messages: cut it out here, in
      // every encoding, before anyone decodes or clips the text (a clipped or decoded key would
      // no longer be recognised).
      const text = redact(Buffer.concat(chunks).toString('utf8'));
      return { kind: 'response', status: res.statusCode, headers: res.headers, body: text.slice(0, MAX_RESPONSE_BYTES) };
    } catch (err) {
      if (signal.aborted) return { kind: 'aborted' };
      const e = err as { code?: unknown };
      const timedOut = t.timedOut();
      return {
        kind: 'network',
        error: timedOut ? `no complete answer within ${timeoutMs} ms` : redact(errorMessage(err)),
        code: timedOut ? 'TIMEOUT' : typeof e?.code === 'string' ? e.code : undefined,
        timedOut,
      };
    } finally {
      t.dispose();
    }
  }

  return {
    post(body, timeoutMs, signal) {
      // The exporter's own requests must never become spans (they would be exported in turn).
      return context.with(suppressTracing(context.active()), () => send(body, timeoutMs, signal));
    },
    async prepare(json) {
      return o.gzip ? gzipped(typeof json === 'string' ? Buffer.from(json, 'utf8') : json) : json;
    },
    async close() {
      await http.then(({ agent }) => agent.destroy()).catch(() => undefined);
    },
  };
}
