// Helpers for delivery fault tests: valid ReadyEvents, a fast DeliveryConfig for an intake, and
// small assertions about what an intake received.
import { randomUUID } from 'node:crypto';
import { Diagnostics } from '../src/diagnostics.js';
import type { DeliveryConfig, ReadyEvent } from '../src/delivery/types.js';
import type { Intake, IntakeEvent } from './intake.js';

const PIPELINE_ID = randomUUID();

/** A valid finished-job event named `name`, ended `agoMs` before now (fresh by default). */
export function jobEvent(name: string, opts: { agoMs?: number; padBytes?: number } = {}): ReadyEvent {
  const end = Date.now() - (opts.agoMs ?? 1_000);
  const resource: Record<string, unknown> = {
    level: 'job',
    id: randomUUID(),
    name,
    pipeline_name: 'delivery-tests',
    pipeline_unique_id: PIPELINE_ID,
    start: new Date(end - 5_000).toISOString(),
    end: new Date(end).toISOString(),
    status: 'success',
    url: `https://ci.example/jobs/${encodeURIComponent(name)}`,
  };
  if (opts.padBytes) resource.tags = [`pad:${'x'.repeat(opts.padBytes)}`];
  const json = JSON.stringify({ attributes: { resource }, type: 'cipipeline_resource_request' });
  return { json, bytes: Buffer.byteLength(json), timeMs: end, describe: `job "${name}"` };
}

export function jobEvents(prefix: string, n: number, opts: { agoMs?: number; padBytes?: number } = {}): ReadyEvent[] {
  return Array.from({ length: n }, (_, i) => jobEvent(`${prefix}-${i}`, opts));
}

export type ConfigOverrides = Partial<Omit<DeliveryConfig, 'retry'>> & { retry?: Partial<DeliveryConfig['retry']> };

/** Settings small enough for tests to run in milliseconds. */
export function fastConfig(endpoint: string, over: ConfigOverrides = {}): DeliveryConfig {
  const { retry, ...rest } = over;
  return {
    endpoint,
    siteLabel: 'test.example',
    apiKey: 'test-api-key-0123456789',
    userAgent: 'datadog-ci-pipeline-exporter-tests',
    maxBatchEvents: 1000,
    maxBatchBytes: 3_000_000,
    requestTimeoutMs: 2_000,
    maxConcurrentRequests: 2,
    maxQueuedEvents: 10_000,
    maxEventAgeMs: 18 * 3_600_000,
    gzip: false,
    spoolDir: undefined,
    ...rest,
    retry: { initialDelayMs: 10, maxDelayMs: 50, deadlineMs: 3_000, ...retry },
  };
}

/** Diagnostics whose lines are kept for assertions instead of printed. */
export function recordingDiagnostics(): { diagnostics: Diagnostics; lines: string[] } {
  const lines: string[] = [];
  return { diagnostics: new Diagnostics((l) => lines.push(l)), lines };
}

export function nameOf(e: IntakeEvent): string {
  return e.attributes.resource.name;
}

/** Names of the events the intake accepted (2xx), sorted; duplicates kept. */
export function acceptedNames(intake: Intake): string[] {
  return intake.events.map(nameOf).sort();
}

export function namesOf(events: readonly ReadyEvent[]): string[] {
  return events.map((e) => (JSON.parse(e.json) as { attributes: { resource: { name: string } } }).attributes.resource.name).sort();
}

/** Whether every accepted duplicate came from identical bytes (a retry), never a changed event. */
export function duplicatesAreIdentical(intake: Intake): boolean {
  const seen = new Map<string, string>();
  for (const e of intake.events) {
    const key = nameOf(e);
    const s = JSON.stringify(e);
    if (seen.has(key) && seen.get(key) !== s) return false;
    seen.set(key, s);
  }
  return true;
}
