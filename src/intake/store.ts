// What the intake keeps for its page: the pipelines received, each with its latest event per
// stage, job and step, and the requests it rejected. Bounded: the least recently updated
// pipeline is forgotten first, a pipeline keeps at most `maxEventsPerPipeline` events (later
// ones are counted, not kept), and only the last `maxRejected` rejections are kept.
//
// A running job and the finished job that follows share an ID: the second replaces the first,
// which is how the page shows a running bar turn finished. Events of a rejected request that have
// no problem of their own are not kept: the exporter bisects a 400 and sends them again.
import type { Problem } from './problems.js';
import { fieldOf } from './problems.js';

export interface StoreLimits {
  maxPipelines: number;
  maxEventsPerPipeline: number;
  maxRejected: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = { maxPipelines: 100, maxEventsPerPipeline: 5000, maxRejected: 50 };

/** A problem as the page shows it: the field inside the resource and the message. */
export interface EventProblem {
  field: string;
  message: string;
}

/** The part of an event the page draws (not the whole resource: the page polls this). */
export interface StoredEvent {
  key: string;
  level: string;
  id: string | null;
  name: string;
  status: string;
  start: string | null;
  end: string | null;
  stageId: string | null;
  jobId: string | null;
  pipelineName: string | null;
  url: string | null;
  error: { type?: string; message?: string; domain?: string } | null;
  /** Sequence number of the request that brought this version of the event. */
  request: number;
  receivedAt: number;
  /** False when the event was in a rejected (400) request: `problems` says why. */
  accepted: boolean;
  problems: EventProblem[];
  notes: EventProblem[];
}

export interface StoredPipeline {
  /** pipeline_unique_id (the pipeline's unique_id), or "" for events that name none. */
  id: string;
  firstReceivedAt: number;
  updatedAt: number;
  events: Map<string, StoredEvent>;
  /** Events not kept because the pipeline had maxEventsPerPipeline already. */
  notKept: number;
}

export interface RejectedRequest {
  request: number;
  receivedAt: number;
  events: number;
  /** Every problem of the request, worded for people (event and field named). */
  details: string[];
}

export interface Snapshot {
  revision: number;
  /** The intake's clock, so that the page draws running bars against it, not the browser's. */
  now: number;
  counts: { requests: number; accepted: number; rejected: number; eventsAccepted: number; eventsRejected: number; forgottenPipelines: number };
  pipelines: Array<Omit<StoredPipeline, 'events'> & { events: StoredEvent[] }>;
  rejected: RejectedRequest[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
/** Strings the page shows are clipped: a 5000-character error message is for the details box. */
const clip = (v: unknown, max: number): string | undefined => (typeof v === 'string' ? (v.length > max ? `${v.slice(0, max)}…` : v) : undefined);

function resourceOf(ev: unknown): Record<string, unknown> | undefined {
  const r = (ev as { attributes?: { resource?: unknown } } | null)?.attributes?.resource;
  return r !== null && typeof r === 'object' && !Array.isArray(r) ? (r as Record<string, unknown>) : undefined;
}

export class PipelineStore {
  private readonly pipelines = new Map<string, StoredPipeline>();
  private readonly rejected: RejectedRequest[] = [];
  private revision = 0;
  private readonly counts = { requests: 0, accepted: 0, rejected: 0, eventsAccepted: 0, eventsRejected: 0, forgottenPipelines: 0 };

  constructor(private readonly limits: StoreLimits = DEFAULT_STORE_LIMITS) {}

  get currentRevision(): number {
    return this.revision;
  }

  /** A request answered 2xx: keep its events (notes, like a git without branch, go with them). */
  accepted(request: number, events: readonly unknown[], notes: readonly Problem[], at: number): void {
    this.counts.requests++;
    this.counts.accepted++;
    this.counts.eventsAccepted += events.length;
    const byEvent = group(notes);
    events.forEach((ev, i) => this.put(ev, request, at, true, [], byEvent.get(i) ?? []));
    this.revision++;
  }

  /** A request answered 400: keep the events that have problems, and the request's problems as text. */
  rejectedRequest(request: number, events: readonly unknown[], problems: readonly Problem[], details: string[], at: number): void {
    this.counts.requests++;
    this.counts.rejected++;
    this.counts.eventsRejected += events.length;
    const byEvent = group(problems);
    for (const [i, list] of byEvent) {
      if (i !== null && events[i] !== undefined) this.put(events[i], request, at, false, list, []);
    }
    this.rejected.push({ request, receivedAt: at, events: events.length, details: details.slice(0, 50) });
    if (this.rejected.length > this.limits.maxRejected) this.rejected.splice(0, this.rejected.length - this.limits.maxRejected);
    this.revision++;
  }

  /** Any other answer (a scripted fault, 413, 5xx): counted only. */
  otherAnswer(): void {
    this.counts.requests++;
    this.revision++;
  }

  private put(ev: unknown, request: number, at: number, accepted: boolean, problems: Problem[], notes: Problem[]): void {
    const r = resourceOf(ev);
    if (!r) return;
    const level = str(r.level) ?? '?';
    const pipelineId = (level === 'pipeline' ? str(r.unique_id) : str(r.pipeline_unique_id)) ?? '';
    const id = level === 'pipeline' ? str(r.unique_id) : str(r.id);
    let p = this.pipelines.get(pipelineId);
    if (p) {
      // Most recently updated last: Map order is the eviction order.
      this.pipelines.delete(pipelineId);
    } else {
      p = { id: pipelineId, firstReceivedAt: at, updatedAt: at, events: new Map(), notKept: 0 };
    }
    p.updatedAt = at;
    this.pipelines.set(pipelineId, p);
    while (this.pipelines.size > this.limits.maxPipelines) {
      const oldest = this.pipelines.keys().next().value as string;
      this.pipelines.delete(oldest);
      this.counts.forgottenPipelines++;
    }
    const key = `${level}:${id ?? `#${request}:${p.events.size}`}`;
    const previous = p.events.get(key);
    // An accepted version is never replaced by a rejected one (Datadog keeps what it accepted),
    // but the rejection's problems are shown on it.
    if (previous?.accepted && !accepted) {
      previous.problems = problems.map((x) => ({ field: fieldOf(x.pointer), message: x.message }));
      return;
    }
    if (!previous && p.events.size >= this.limits.maxEventsPerPipeline) {
      p.notKept++;
      return;
    }
    const error = r.error !== null && typeof r.error === 'object' ? (r.error as Record<string, unknown>) : undefined;
    p.events.set(key, {
      key,
      level,
      id,
      name: clip(r.name, 300) ?? '(no name)',
      status: str(r.status) ?? '?',
      start: str(r.start),
      end: str(r.end),
      stageId: str(r.stage_id),
      jobId: str(r.job_id),
      pipelineName: clip(r.pipeline_name, 300) ?? null,
      url: clip(r.url, 2000) ?? null,
      error: error ? { type: clip(error.type, 200), message: clip(error.message, 5000), domain: clip(error.domain, 50) } : null,
      request,
      receivedAt: at,
      accepted,
      problems: problems.map((x) => ({ field: fieldOf(x.pointer), message: x.message })),
      notes: notes.map((x) => ({ field: fieldOf(x.pointer), message: x.message })),
    });
  }

  snapshot(now: number): Snapshot {
    return {
      revision: this.revision,
      now,
      counts: { ...this.counts },
      pipelines: [...this.pipelines.values()].map((p) => ({ ...p, events: [...p.events.values()] })),
      rejected: [...this.rejected],
    };
  }
}

function group(problems: readonly Problem[]): Map<number | null, Problem[]> {
  const out = new Map<number | null, Problem[]>();
  for (const p of problems) {
    const list = out.get(p.event);
    if (list) list.push(p);
    else out.set(p.event, [p]);
  }
  return out;
}
