// One HTTP POST of one body. No decisions here: the caller classifies what came back.
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { Agent, EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { linkedTimeout } from './timers.js';

const gzip = promisify(gzipCb);

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

const PROXY_VARIABLES = ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'];

/**
 * A keep-alive agent, through a proxy when one is configured. CI runners behind a corporate
 * proxy set HTTPS_PROXY/NO_PROXY: undici's EnvHttpProxyAgent reads them the way curl does. It
 * is only used when a proxy is in play, so the common case keeps a plain Agent.
 */
function createDispatcher(o: TransportOptions): Dispatcher {
  const agentOptions = {
    keepAliveTimeout: 4_000,
    connections: Math.max(1, o.maxConnections),
    // Timeouts are ours (per attempt, whole exchange); undici's would only cover parts of it.
    headersTimeout: 0,
    bodyTimeout: 0,
  };
  if (typeof o.proxy === 'string') return new EnvHttpProxyAgent({ ...agentOptions, httpProxy: o.proxy, httpsProxy: o.proxy, noProxy: '' });
  if (o.proxy === undefined && PROXY_VARIABLES.some((v) => process.env[v])) return new EnvHttpProxyAgent(agentOptions);
  return new Agent(agentOptions);
}

export function createTransport(o: TransportOptions): Transport {
  const agent = createDispatcher(o);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'user-agent': o.userAgent,
  };
  if (o.apiKey !== undefined) headers['dd-api-key'] = o.apiKey;
  if (o.gzip) headers['content-encoding'] = 'gzip';

  async function send(body: string | Buffer, timeoutMs: number, signal: AbortSignal): Promise<PostResult> {
    if (signal.aborted) return { kind: 'aborted' };
    const t = linkedTimeout(timeoutMs, signal);
    try {
      const res = await request(o.endpoint, { method: 'POST', headers, body, dispatcher: agent, signal: t.signal });
      let text = '';
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (size < MAX_RESPONSE_BYTES) text += chunk.toString('utf8');
        size += chunk.length;
      }
      return { kind: 'response', status: res.statusCode, headers: res.headers, body: text.slice(0, MAX_RESPONSE_BYTES) };
    } catch (err) {
      if (signal.aborted) return { kind: 'aborted' };
      const e = err as { message?: string; code?: string };
      const timedOut = t.timedOut();
      return {
        kind: 'network',
        error: timedOut ? `no complete answer within ${timeoutMs} ms` : (e.message ?? String(err)),
        code: timedOut ? 'TIMEOUT' : e.code,
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
      return o.gzip ? gzip(typeof json === 'string' ? Buffer.from(json, 'utf8') : json) : json;
    },
    async close() {
      await agent.destroy().catch(() => undefined);
    },
  };
}
