// User-facing options, their defaults, and their validation. A bad option is a configuration
// error: reported once, in one line that says how to fix it, never thrown at the host program.
import type { DeliveryConfig } from './delivery/types.js';
import type { Logger } from './diagnostics.js';
import { MAX_EVENT_AGE_MS } from './validation/validate.js';
import { DATADOG_SITES, endpointForSite, type DatadogSite } from './sites.js';
import { PACKAGE_NAME, VERSION } from './version.js';

export interface DatadogCIPipelineExporterOptions {
  /** Datadog API key. Default: `DD_API_KEY`. Sent only in the `DD-API-KEY` header; never logged. */
  apiKey?: string;
  /** Datadog site, e.g. `datadoghq.eu`. Default: `DD_SITE`, else `datadoghq.com`. */
  site?: string;
  /** Full URL to POST to, for proxies and local intakes. Default: `https://api.<site>/api/v2/ci/pipeline`. */
  endpoint?: string;
  /** `provider_name` of every event. Default: `custom`. */
  providerName?: string;
  /** `env` of every event. Default: `DD_ENV`, else the resource's `deployment.environment.name`. */
  env?: string;
  /** `service` of every event (the spec: "to differentiate between instances" of a SaaS CI). */
  service?: string;

  /** Events per request, 1–1000. Default 1000 (the API's limit). */
  maxBatchEvents?: number;
  /** Uncompressed bytes per request body. Default 5,000,000 (what Datadog's own clients send at most). */
  maxBatchBytes?: number;
  /** Timeout of one HTTP attempt. Default 15,000 ms. */
  requestTimeoutMs?: number;
  /** Requests in flight at once. Default 4. */
  maxConcurrentRequests?: number;
  /** Ready events waiting to be sent; beyond it the oldest are dropped (counted). Default 100,000. */
  maxQueuedEvents?: number;
  /** Retry backoff: first delay, largest delay, and the total time budget of one batch. */
  retry?: { initialDelayMs?: number; maxDelayMs?: number; deadlineMs?: number };
  /** Spans held while waiting for their ancestors; beyond it the oldest are dropped (counted). Default 200,000. */
  maxPendingSpans?: number;
  /** Resolved spans remembered for children that end after their parent. Default 100,000. */
  maxRememberedSpans?: number;
  /** Events older than this are dropped (Datadog rejects them). Default 18 h. */
  maxEventAgeMs?: number;
  /** Upper bound of `forceFlush()`. Default 30,000 ms. */
  flushTimeoutMs?: number;
  /** Upper bound of `shutdown()`. Default 30,000 ms. */
  shutdownTimeoutMs?: number;
  /** Gzip request bodies. Default false: the spec documents no Content-Encoding for this endpoint. */
  gzip?: boolean;
  /** Directory where undeliverable events are kept at shutdown and sent by the next exporter. */
  spoolDir?: string;
  /**
   * HTTP proxy URL. Default: the standard `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment
   * variables, when set. `false`: connect directly whatever the environment says.
   */
  proxy?: string | false;
  /** Where messages go, one line each. Default: stderr, prefixed `[datadog-ci-pipeline-exporter]`. */
  logger?: Logger;
}

export interface ResolvedOptions {
  delivery: DeliveryConfig;
  providerName: string;
  env: string | undefined;
  service: string | undefined;
  maxPendingSpans: number;
  maxRememberedSpans: number;
  maxEventAgeMs: number;
  flushTimeoutMs: number;
  shutdownTimeoutMs: number;
}

export type Resolution = { ok: true; options: ResolvedOptions } | { ok: false; message: string };

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

export function resolveOptions(o: DatadogCIPipelineExporterOptions = {}, env: NodeJS.ProcessEnv = process.env): Resolution {
  const problems: string[] = [];
  const num = (name: string, value: number | undefined, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (value === undefined) return dflt;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      problems.push(`option ${name} must be a number from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'any' : max}, got ${JSON.stringify(value)}`);
      return dflt;
    }
    return value;
  };

  const siteRaw = nonEmpty(o.site) ?? nonEmpty(env.DD_SITE) ?? 'datadoghq.com';
  const site = siteRaw.toLowerCase().replace(/^https?:\/\//, '').replace(/^api\./, '').replace(/\/+$/, '');
  const siteKnown = (DATADOG_SITES as readonly string[]).includes(site);
  let endpoint: string;
  let siteLabel: string;
  // Nested `run`s find their parent's endpoint here (see propagation.ts).
  o = o.endpoint === undefined && nonEmpty(env.DD_CI_PIPELINE_ENDPOINT) !== undefined ? { ...o, endpoint: nonEmpty(env.DD_CI_PIPELINE_ENDPOINT) } : o;
  if (o.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      problems.push(`option endpoint must be an http(s) URL, got ${JSON.stringify(o.endpoint)}`);
      endpoint = '';
    } else {
      endpoint = url.href;
    }
    siteLabel = url?.host ?? String(o.endpoint);
  } else {
    if (!siteKnown) {
      const from = o.site !== undefined ? 'option site' : 'DD_SITE';
      problems.push(
        `${from} "${siteRaw}" is not a Datadog site; use one of ${DATADOG_SITES.join(', ')} (or pass the endpoint option for a proxy)`,
      );
    }
    endpoint = siteKnown ? endpointForSite(site as DatadogSite) : '';
    siteLabel = site;
  }

  const apiKey = nonEmpty(o.apiKey) ?? nonEmpty(env.DD_API_KEY);
  if (apiKey === undefined && o.endpoint === undefined) {
    problems.push(`no Datadog API key: set the DD_API_KEY environment variable or pass { apiKey } (site ${siteLabel})`);
  }

  const maxBatchEvents = num('maxBatchEvents', o.maxBatchEvents, 1000, 1, 1000);
  const maxBatchBytes = num('maxBatchBytes', o.maxBatchBytes, 5_000_000, 1024);
  const requestTimeoutMs = num('requestTimeoutMs', o.requestTimeoutMs, 15_000, 1);
  const maxConcurrentRequests = num('maxConcurrentRequests', o.maxConcurrentRequests, 4, 1, 64);
  const maxQueuedEvents = num('maxQueuedEvents', o.maxQueuedEvents, 100_000, 1);
  const retry = {
    initialDelayMs: num('retry.initialDelayMs', o.retry?.initialDelayMs, 500, 0),
    maxDelayMs: num('retry.maxDelayMs', o.retry?.maxDelayMs, 30_000, 0),
    deadlineMs: num('retry.deadlineMs', o.retry?.deadlineMs, 120_000, 0),
  };
  const maxPendingSpans = num('maxPendingSpans', o.maxPendingSpans, 200_000, 1);
  const maxRememberedSpans = num('maxRememberedSpans', o.maxRememberedSpans, 100_000, 1);
  const maxEventAgeMs = num('maxEventAgeMs', o.maxEventAgeMs, MAX_EVENT_AGE_MS, 1);
  const flushTimeoutMs = num('flushTimeoutMs', o.flushTimeoutMs, 30_000, 0);
  const shutdownTimeoutMs = num('shutdownTimeoutMs', o.shutdownTimeoutMs, 30_000, 0);
  if (o.spoolDir !== undefined && (typeof o.spoolDir !== 'string' || o.spoolDir.trim() === '')) {
    problems.push(`option spoolDir must be a directory path, got ${JSON.stringify(o.spoolDir)}`);
  }

  if (o.proxy !== undefined && o.proxy !== false) {
    let ok = false;
    try {
      ok = /^https?:$/.test(new URL(o.proxy).protocol);
    } catch {
      ok = false;
    }
    // The URL may carry credentials: say what is wrong without repeating it.
    if (!ok) problems.push('option proxy must be an http(s) URL such as http://proxy.example:3128');
  }

  if (problems.length > 0) {
    return {
      ok: false,
      message: `not configured, nothing will be sent: ${problems.join('; ')}.`,
    };
  }
  return {
    ok: true,
    options: {
      delivery: {
        endpoint,
        siteLabel,
        apiKey,
        userAgent: `${PACKAGE_NAME}/${VERSION} node/${process.versions.node}`,
        maxBatchEvents,
        maxBatchBytes,
        requestTimeoutMs,
        maxConcurrentRequests,
        maxQueuedEvents,
        retry,
        maxEventAgeMs,
        gzip: o.gzip === true,
        spoolDir: nonEmpty(o.spoolDir),
        proxy: o.proxy,
      },
      providerName: nonEmpty(o.providerName) ?? 'custom',
      env: nonEmpty(o.env) ?? nonEmpty(env.DD_ENV),
      service: nonEmpty(o.service),
      maxPendingSpans,
      maxRememberedSpans,
      maxEventAgeMs,
      flushTimeoutMs,
      shutdownTimeoutMs,
    },
  };
}
