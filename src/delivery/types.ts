// The contract between the exporter (which builds events) and delivery (which gets them to
// Datadog). Events cross it already serialized: JSON.stringify runs once per event. Delivery
// writes each string into its batch's body at once (ledger.ts); byte caps, 413 splitting, 400
// bisection and the spool then work on that body's bytes.

export interface ReadyEvent {
  /** One `data` item: `{"attributes":{...},"type":"cipipeline_resource_request"}`. */
  json: string;
  /** UTF-8 byte length of `json`. */
  bytes: number;
  /** Epoch ms of the event's `end` (or `start` for running events): Datadog rejects it 18 h later. */
  timeMs: number;
  /**
   * For messages: `job "build" (trace 0af7…, span b7ad…)`. Never contains secrets. Usually a
   * function: few events are ever named in a message, so the text is built only when one is
   * (read it with describeEvent).
   */
  describe: string | (() => string);
}

/** The event's `describe` text. */
export function describeEvent(e: Pick<ReadyEvent, 'describe'>): string {
  return typeof e.describe === 'string' ? e.describe : e.describe();
}

export interface Delivery {
  /**
   * Queue events for sending. Resolves once every one of them is delivered (true) or has
   * definitively failed, been dropped or spooled (false). Never rejects.
   */
  send(events: ReadyEvent[]): Promise<boolean>;
  /** Resolves when everything queued before the call is settled, or when timeoutMs passes. */
  flush(timeoutMs: number): Promise<void>;
  /** Flush within timeoutMs, then stop: later sends resolve false at once. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Resolved delivery settings (see options.ts for the user-facing names and defaults). */
export interface DeliveryConfig {
  /** Full URL to POST to. */
  endpoint: string;
  /** Datadog site, for messages (e.g. "datadoghq.com"), or the endpoint's host when custom. */
  siteLabel: string;
  /** Sent only as the DD-API-KEY header. Undefined: requests go without it (local intakes). */
  apiKey: string | undefined;
  userAgent: string;
  /** ≤ 1000 events per request. */
  maxBatchEvents: number;
  /** Uncompressed body byte cap per request. */
  maxBatchBytes: number;
  /** Per-attempt request timeout. */
  requestTimeoutMs: number;
  maxConcurrentRequests: number;
  /** Ready events waiting for a request slot; beyond it the oldest are dropped. */
  maxQueuedEvents: number;
  retry: {
    initialDelayMs: number;
    maxDelayMs: number;
    /** Total time budget for one batch, across attempts. */
    deadlineMs: number;
  };
  /** Age limit for events (Datadog: 18 h). */
  maxEventAgeMs: number;
  gzip: boolean;
  spoolDir: string | undefined;
  /**
   * HTTP proxy URL for every request; undefined: the standard HTTPS_PROXY/HTTP_PROXY/NO_PROXY
   * environment variables (when any is set); false: no proxy, whatever the environment says.
   */
  proxy?: string | false | undefined;
}
