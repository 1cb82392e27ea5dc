// User-facing options, their defaults, and their validation. A bad option is a configuration
// error: reported in one line that names it and says how to fix it, never thrown at the host
// program. Each option is judged in one place, the OPTIONS table below.
import { MAX_TIMER_MS } from './delivery/timers.js';
import type { DeliveryConfig } from './delivery/types.js';
import { quote, secretRedactor, type Logger } from './diagnostics.js';
import { resolveRedactParameters, type ParameterRedactor } from './mapping/scrub.js';
import { MAX_EVENT_AGE_MS } from './validation/validate.js';
import { DATADOG_SITES, endpointForSite, type DatadogSite } from './sites.js';
import { PACKAGE_NAME, VERSION } from './version.js';
import { resolveVocabularies, VOCABULARY_NAMES, type VocabulariesOption, type VocabularyName } from './vocabularies/index.js';

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

  // --- CI detection and secret scrubbing (see the README's "CI and git detection" and "Secrets") ---
  /**
   * Fill what attributes do not give from the CI provider's environment variables and the local
   * repository (`git`, once, at most ~1 s). Default true; `false` turns it off.
   */
  detectEnvironment?: boolean;
  /**
   * `parameters` sent as `[redacted]`: a list of case-insensitive substrings of the key (replacing
   * the default TOKEN, SECRET, PASSWORD, PASSWD, KEY, CREDENTIAL, AUTH), a RegExp tested on the
   * key, or `false` for none. URL credentials and the API key are removed whatever this says.
   */
  redactParameters?: readonly string[] | RegExp | false;

  // --- Other tools' vocabularies (src/vocabularies) ---
  /**
   * Which other tools' span vocabularies become events when a span has no `ci.level`:
   * `'github-receiver'`, `'gitlab-receiver'`, `'jenkins'`, `'github-actions'`, `'cicd'`
   * (OpenTelemetry CICD conventions), `'datadog'` (Datadog's tag names as a fallback).
   * Default: all (`true`); a list selects; `false` turns them off.
   */
  vocabularies?: VocabulariesOption;
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
  /** The endpoint or site as the user gave them (option or environment), for child processes (propagation.ts). */
  given: { endpoint?: string; site?: string };
  /** CI detection and secret scrubbing. */
  detectEnvironment: boolean;
  redactParameter: ParameterRedactor | undefined;
  /** Enabled vocabularies (empty: none; undefined: all, the default). Optional so that configurations built without it stay valid. */
  vocabularies?: readonly VocabularyName[];
}

export type Resolution = (
  | { ok: true; options: ResolvedOptions }
  /** `message`: every problem in one line; `problems`: one line per bad option. */
  | { ok: false; message: string; problems: string[] }
) & {
  /** Said but not errors: values clamped to a limit, likely typos of option names. */
  notes: string[];
  /** The API key when one was found (even on error), so that messages can be redacted of it. */
  apiKey: string | undefined;
  /** The logger option when it is a function; undefined otherwise (stderr). */
  logger: Logger | undefined;
};

// ---------------------------------------------------------------------------------------------
// The table. A check turns what the user passed into a value, or says what is wrong. `null` is
// the same as leaving the option out (configurations built from JSON or `?? null` do that).

type Checked<T> = { value: T | undefined; note?: string } | { problem: string };
type Check<T> = (value: unknown, name: string) => Checked<T>;

/**
 * Cuts the API key out of option values quoted in messages (a key pasted into `site`, say). Set
 * by resolveOptions before any check runs (and reset after): the redaction has to happen before
 * quote() clips.
 */
let redactKey: (text: string) => string = (t) => t;

/** Longest option value shown in a message. */
const MAX_SHOWN = 80;

/** A string for a message, the key cut out before quote() clips it. */
const quoted = (s: string): string => quote(redactKey(s), MAX_SHOWN);

/** What a bad value was, for a message: its text through quote(), or only its type for secrets. */
function shown(value: unknown, secret = false): string {
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  if (secret) return `a value of type ${type}`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `${quoted(value)} (${type})`;
  const full = redactKey(quote(value, Number.MAX_SAFE_INTEGER));
  return `${full.length > MAX_SHOWN ? `${full.slice(0, MAX_SHOWN)}… (${full.length} chars)` : full} (${type})`;
}

/** A string option; blank means unset (the environment fallback or the default applies). */
function text(opts: { secret?: boolean; blank?: 'unset' | 'problem'; what?: string } = {}): Check<string> {
  return (v, name) => {
    if (typeof v !== 'string') return { problem: `option ${name} must be ${opts.what ?? 'a string'}, got ${shown(v, opts.secret)}` };
    const t = v.trim();
    if (t !== '') return { value: t };
    return opts.blank === 'problem' ? { problem: `option ${name} must be ${opts.what ?? 'a non-empty string'}, got an empty string` } : { value: undefined };
  };
}

/** A whole number of things from min to max: batch sizes, queue lengths, concurrency. */
function count(min: number, max: number = Number.MAX_SAFE_INTEGER): Check<number> {
  return (v, name) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? { value: v }
      : { problem: `option ${name} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}, got ${shown(v)}` };
}

/**
 * A duration in ms that becomes a timer. Above Node's timer limit (2^31−1 ms, 24.8 days; a
 * longer timer fires at once) it is clamped and said: whoever passes Infinity or 1e12 means
 * "practically never", and the clamp keeps that meaning.
 */
function timerMs(min: number): Check<number> {
  return (v, name) => {
    if (typeof v !== 'number' || Number.isNaN(v) || v < min) {
      return { problem: `option ${name} must be a number of milliseconds from ${min} to ${MAX_TIMER_MS}, got ${shown(v)}` };
    }
    if (v > MAX_TIMER_MS) {
      return { value: MAX_TIMER_MS, note: `option ${name} is ${shown(v)} ms, above Node's timer limit; using ${MAX_TIMER_MS} ms (24.8 days).` };
    }
    return { value: v };
  };
}

/** A duration in ms compared with ages, never a timer: any finite value from min. */
function ageMs(min: number): Check<number> {
  return (v, name) =>
    typeof v === 'number' && Number.isFinite(v) && v >= min
      ? { value: v }
      : { problem: `option ${name} must be a finite number of milliseconds from ${min}, got ${shown(v)}` };
}

function flag(): Check<boolean> {
  return (v, name) => (typeof v === 'boolean' ? { value: v } : { problem: `option ${name} must be true or false, got ${shown(v)}` });
}

function fn<T>(example: string): Check<T> {
  return (v, name) => (typeof v === 'function' ? { value: v as T } : { problem: `option ${name} must be a function such as ${example}, got ${shown(v)}` });
}

/** An object of sub-options, each with its own check (e.g. retry.initialDelayMs). */
function group<S extends Record<string, Check<unknown>>>(
  spec: S,
  example: string,
): Check<{ [K in keyof S]: S[K] extends Check<infer V> ? V | undefined : never }> {
  return (v, name) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: `option ${name} must be an object such as ${example}, got ${shown(v)}` };
    const out: Record<string, unknown> = {};
    const problems: string[] = [];
    const notes: string[] = [];
    for (const key of Object.keys(spec)) {
      const r = judge(spec[key]!, v, key, `${name}.${key}`);
      if ('problem' in r) problems.push(r.problem);
      else {
        out[key] = r.value;
        if (r.note) notes.push(r.note);
      }
    }
    if (problems.length > 0) return { problem: problems.join('; ') };
    return { value: out as never, ...(notes.length > 0 ? { note: notes.join(' ') } : {}) };
  };
}

const PROXY_EXAMPLE = 'http://proxy.example:3128';

/** A proxy URL may carry credentials: what is wrong is said without repeating it. */
const proxyCheck: Check<string | false> = (v, name) => {
  if (v === false) return { value: false };
  if (typeof v !== 'string') return { problem: `option ${name} must be an http(s) URL such as ${PROXY_EXAMPLE}, or false, got ${shown(v, true)}` };
  let ok = false;
  try {
    ok = /^https?:$/.test(new URL(v).protocol);
  } catch {
    ok = false;
  }
  return ok ? { value: v } : { problem: `option ${name} must be an http(s) URL such as ${PROXY_EXAMPLE}` };
};

/**
 * Every option and its check: one entry per option, and TypeScript refuses an option of
 * DatadogCIPipelineExporterOptions without one. Cross-option rules (site vs endpoint, the API
 * key's environment fallback) are in resolve() below.
 *
 * Adding an option: declare it in DatadogCIPipelineExporterOptions, add one line here (e.g.
 * `detectEnvironment: flag()`, or any `(value, name) => ({ value } | { problem })` for a shape
 * of its own; the problem names the option, says what it must be and shows the value through
 * shown()), then read the checked value in resolve() as `o.<name> ?? <default>`. null and
 * undefined never reach a check: they mean "unset".
 */
const OPTIONS = {
  apiKey: text({ secret: true }),
  site: text(),
  endpoint: text({ what: 'an http(s) URL' }),
  providerName: text(),
  env: text(),
  service: text(),
  maxBatchEvents: count(1, 1000),
  maxBatchBytes: count(1024),
  requestTimeoutMs: timerMs(1),
  maxConcurrentRequests: count(1, 64),
  maxQueuedEvents: count(1),
  retry: group(
    { initialDelayMs: timerMs(0), maxDelayMs: timerMs(0), deadlineMs: timerMs(0) },
    '{ initialDelayMs: 500, maxDelayMs: 30000, deadlineMs: 120000 }',
  ),
  maxPendingSpans: count(1),
  maxRememberedSpans: count(1),
  maxEventAgeMs: ageMs(1),
  flushTimeoutMs: timerMs(0),
  shutdownTimeoutMs: timerMs(0),
  gzip: flag(),
  spoolDir: text({ blank: 'problem', what: 'a directory path' }),
  proxy: proxyCheck,
  logger: fn<Logger>('(line) => console.error(line)'),
  detectEnvironment: flag(),
  redactParameters: (v) => {
    const r = resolveRedactParameters(v);
    return r.ok ? { value: v as readonly string[] | RegExp | false } : { problem: r.problem };
  },
  vocabularies: (v) => {
    const r = resolveVocabularies(v);
    return 'problem' in r ? { problem: r.problem } : { value: r.names };
  },
} satisfies { [K in keyof Required<DatadogCIPipelineExporterOptions>]: Check<unknown> };

type Values = { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K] extends Check<infer V> ? V | undefined : never };

/** Reads one option (a getter or a Proxy may throw) and checks it. */
function judge<T>(check: Check<T>, from: object, key: string, name: string): Checked<T> {
  let v: unknown;
  try {
    v = (from as Record<string, unknown>)[key];
  } catch (err) {
    let why = 'it threw';
    try {
      if (err instanceof Error) why = String(err.message);
    } catch {
      // a throwing message getter: 'it threw' says enough
    }
    return { problem: `option ${name} could not be read (${quoted(why)})` };
  }
  if (v === undefined || v === null) return { value: undefined };
  try {
    return check(v, name);
  } catch {
    return { problem: `option ${name} could not be read` };
  }
}

/** Option names that are probably typos of ours (`apikey`, `maxBatchEvent`): said, not errors. */
function typos(o: object): string[] {
  const known = Object.keys(OPTIONS);
  let keys: string[];
  try {
    keys = Object.keys(o);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const key of keys.slice(0, 200)) {
    if (key in OPTIONS || key.length > 40) continue;
    const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || editDistance(k, key) <= 2);
    if (near) out.push(`unknown option ${quote(key, 40)} is ignored; did you mean ${near}?`);
  }
  return out;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Checks every option of the table: values (undefined when unset), problems, notes. */
export function checkOptions(o: unknown): { values: Partial<Values>; problems: string[]; notes: string[] } {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  const notes: string[] = [];
  if (o === undefined || o === null) return { values, problems, notes };
  if (typeof o !== 'object' || Array.isArray(o)) {
    // Not even quoted: `new DatadogCIPipelineExporter(process.env.DD_API_KEY)` is a likely mistake.
    problems.push(`the options must be an object such as { apiKey, site }, got ${shown(o, true)}`);
    return { values, problems, notes };
  }
  for (const key of Object.keys(OPTIONS) as Array<keyof typeof OPTIONS>) {
    const r = judge(OPTIONS[key] as Check<unknown>, o, key, key);
    if ('problem' in r) problems.push(r.problem);
    else {
      values[key] = r.value;
      if (r.note) notes.push(r.note);
    }
  }
  notes.push(...typos(o));
  return { values: values as Partial<Values>, problems, notes };
}

// ---------------------------------------------------------------------------------------------

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

export function resolveOptions(input: DatadogCIPipelineExporterOptions | null | undefined = {}, env: NodeJS.ProcessEnv = process.env): Resolution {
  // The key (option or environment) is cut out of every value quoted below; forgotten after.
  const key = input !== null && input !== undefined ? judge(OPTIONS.apiKey, input, 'apiKey', 'apiKey') : { value: undefined };
  redactKey = secretRedactor(('value' in key ? key.value : undefined) ?? nonEmpty(env.DD_API_KEY));
  try {
    return resolve(input, env);
  } finally {
    redactKey = (t) => t;
  }
}

function resolve(input: DatadogCIPipelineExporterOptions | null | undefined, env: NodeJS.ProcessEnv): Resolution {
  const { values: o, problems, notes } = checkOptions(input);

  const siteRaw = o.site ?? nonEmpty(env.DD_SITE) ?? 'datadoghq.com';
  const site = siteRaw.toLowerCase().replace(/^https?:\/\//, '').replace(/^api\./, '').replace(/\/+$/, '');
  const siteKnown = (DATADOG_SITES as readonly string[]).includes(site);
  let endpoint: string;
  let siteLabel: string;
  // The endpoint option falls back to DD_CI_PIPELINE_ENDPOINT: nested `run`s find their parent's
  // endpoint there (see propagation.ts).
  const endpointGiven = o.endpoint ?? nonEmpty(env.DD_CI_PIPELINE_ENDPOINT);
  if (endpointGiven !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpointGiven);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      const from = o.endpoint !== undefined ? 'option endpoint' : 'DD_CI_PIPELINE_ENDPOINT';
      problems.push(`${from} must be an http(s) URL such as https://proxy.example/api/v2/ci/pipeline, got ${quoted(endpointGiven)}`);
      endpoint = '';
    } else {
      endpoint = url.href;
    }
    siteLabel = url?.host ?? endpointGiven;
  } else {
    if (!siteKnown) {
      const from = o.site !== undefined ? 'option site' : 'DD_SITE';
      problems.push(`${from} ${quoted(siteRaw)} is not a Datadog site; use one of ${DATADOG_SITES.join(', ')} (or pass the endpoint option for a proxy)`);
    }
    endpoint = siteKnown ? endpointForSite(site as DatadogSite) : '';
    siteLabel = site;
  }

  const apiKey = o.apiKey ?? nonEmpty(env.DD_API_KEY);
  if (apiKey === undefined && endpointGiven === undefined) {
    problems.push(`no Datadog API key: set the DD_API_KEY environment variable or pass { apiKey } (site ${quoted(siteLabel)})`);
  }
  const logger = o.logger;

  if (problems.length > 0) {
    return {
      ok: false,
      message: `not configured, nothing will be sent: ${problems.join('; ')}.`,
      problems: problems.map((p) => `not configured, nothing will be sent: ${p}.`),
      notes,
      apiKey,
      logger,
    };
  }
  const maxEventAgeMs = o.maxEventAgeMs ?? MAX_EVENT_AGE_MS;
  return {
    ok: true,
    notes,
    apiKey,
    logger,
    options: {
      delivery: {
        endpoint,
        siteLabel,
        apiKey,
        userAgent: `${PACKAGE_NAME}/${VERSION} node/${process.versions.node}`,
        maxBatchEvents: o.maxBatchEvents ?? 1000,
        maxBatchBytes: o.maxBatchBytes ?? 5_000_000,
        requestTimeoutMs: o.requestTimeoutMs ?? 15_000,
        maxConcurrentRequests: o.maxConcurrentRequests ?? 4,
        maxQueuedEvents: o.maxQueuedEvents ?? 100_000,
        retry: {
          initialDelayMs: o.retry?.initialDelayMs ?? 500,
          maxDelayMs: o.retry?.maxDelayMs ?? 30_000,
          deadlineMs: o.retry?.deadlineMs ?? 120_000,
        },
        maxEventAgeMs,
        gzip: o.gzip ?? false,
        spoolDir: o.spoolDir,
        proxy: o.proxy,
      },
      providerName: o.providerName ?? 'custom',
      env: o.env ?? nonEmpty(env.DD_ENV),
      service: o.service,
      maxPendingSpans: o.maxPendingSpans ?? 200_000,
      maxRememberedSpans: o.maxRememberedSpans ?? 100_000,
      maxEventAgeMs,
      flushTimeoutMs: o.flushTimeoutMs ?? 30_000,
      shutdownTimeoutMs: o.shutdownTimeoutMs ?? 30_000,
      given: endpointGiven !== undefined ? { endpoint: endpoint } : o.site !== undefined || nonEmpty(env.DD_SITE) !== undefined ? { site } : {},
      detectEnvironment: o.detectEnvironment ?? true,
      redactParameter: redactor(o.redactParameters),
      vocabularies: o.vocabularies ?? VOCABULARY_NAMES,
    },
  };
}

/** The checked redactParameters option as the function that says which keys to redact. */
function redactor(value: readonly string[] | RegExp | false | undefined): ParameterRedactor | undefined {
  const r = resolveRedactParameters(value);
  return r.ok ? r.redactor : undefined;
}
