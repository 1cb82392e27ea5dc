// undici, loaded once per process, asynchronously, and only the parts the exporter uses.
//
// `import('undici')` evaluates about 110 CommonJS files (fetch, WebSocket, caches, mocks, ...) for
// the two things sent here need: an Agent (with its Pool and Client) and the `request` API (behind
// a proxy, the whole entry is loaded: see below). Loading those files alone costs about a third of it
// (≈70 vs ≈190 ms of CPU on the 2-core bench machine). undici has no `exports` map, so these
// paths are reachable; they are not its documented API, so any surprise (a file moved in a later
// 7.x, a shape that is not the expected one) falls back to the package's entry: never worse than
// before, never an error.
//
// Loading starts when the first transport is created (the exporter's construction), not when the
// package is imported: the package's own load stays small, and the load overlaps whatever the host
// does between building the exporter and its first send. The first send waits for it.
import type { Dispatcher } from 'undici';

export interface UndiciParts {
  Agent: new (options: object) => Dispatcher;
  Client: new (url: string, options: object) => Dispatcher;
  /** undici's `Dispatcher.prototype.request`, called with the dispatcher as `this`. */
  request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
  /** Loaded only when a proxy is in play (from undici's entry). */
  loadEnvHttpProxyAgent: () => Promise<new (options: object) => Dispatcher>;
  /** Which way it was loaded (for tests). */
  via: 'parts' | 'entry';
}

let loading: Promise<UndiciParts> | undefined;

/** undici's parts, loaded on the first call; the same promise on every call. Rejects only when undici cannot be loaded at all. */
export function loadUndici(): Promise<UndiciParts> {
  loading ??= loadParts().catch(loadEntry);
  return loading;
}

/** A CommonJS module's exports, however the import() was compiled (ESM, CJS, bundled). */
function cjs<T>(ns: unknown): T {
  const m = ns as { default?: unknown };
  return (m.default ?? m) as T;
}

function isFn(v: unknown): v is (...args: never[]) => unknown {
  return typeof v === 'function';
}

/** @internal Exported for tests: both ways must give working parts. */
export async function loadParts(): Promise<UndiciParts> {
  const [agent, client, request] = await Promise.all([
    import('undici/lib/dispatcher/agent.js'),
    import('undici/lib/dispatcher/client.js'),
    import('undici/lib/api/api-request.js'),
  ]);
  const parts = { Agent: cjs<unknown>(agent), Client: cjs<unknown>(client), request: cjs<unknown>(request) };
  if (!isFn(parts.Agent) || !isFn(parts.Client) || !isFn(parts.request)) throw new Error('unexpected shape');
  return {
    ...(parts as Pick<UndiciParts, 'Agent' | 'Client' | 'request'>),
    // Behind a proxy, the whole entry: undici's proxy agents call the API methods (connect,
    // request) that the entry installs on Dispatcher.prototype. Proxies are the rare case.
    loadEnvHttpProxyAgent: async () => (await import('undici')).EnvHttpProxyAgent,
    via: 'parts',
  };
}

/** @internal */
export async function loadEntry(): Promise<UndiciParts> {
  const u = await import('undici');
  return {
    Agent: u.Agent,
    Client: u.Client,
    request: u.Dispatcher.prototype.request as UndiciParts['request'],
    loadEnvHttpProxyAgent: async () => u.EnvHttpProxyAgent,
    via: 'entry',
  };
}
