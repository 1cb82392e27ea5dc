// What an answer means, how long to wait before trying again, and the retry loop for one body.
//
// Why not undici's RetryAgent/RetryHandler: it cannot see the per-batch deadline (it retries a
// fixed number of times), cannot be cut short by shutdown while it sleeps (its timer is neither
// abortable nor unref'd, so it would also hold the process open), has no jitter, ignores
// X-RateLimit-Reset, and gives no hook to count retried events. The 413-split and 400-bisect
// decisions also have to happen above any retry layer. What it would save is ~40 lines below.
import type { PostResult } from './transport.js';
import { sleep } from './timers.js';

export type Verdict = 'ok' | 'retry' | 'split' | 'bisect' | 'unauthorized' | 'fail';

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export function classify(r: PostResult): Verdict {
  if (r.kind === 'network') return 'retry';
  if (r.kind === 'aborted') return 'fail';
  const s = r.status;
  if (s >= 200 && s < 300) return 'ok';
  if (RETRY_STATUS.has(s)) return 'retry';
  if (s === 413) return 'split';
  if (s === 400) return 'bisect';
  if (s === 401 || s === 403) return 'unauthorized';
  return 'fail';
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The wait the server asked for, in ms: `Retry-After` (delta-seconds or HTTP date), else
 * `X-RateLimit-Reset` (Datadog sends seconds until the window resets; a value that looks like an
 * epoch timestamp is read as one).
 */
export function serverDelayMs(headers: Record<string, string | string[] | undefined>, now: number): number | undefined {
  const ra = header(headers, 'retry-after')?.trim();
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
    const at = Date.parse(ra);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  const reset = header(headers, 'x-ratelimit-reset')?.trim();
  if (reset && /^\d+(\.\d+)?$/.test(reset)) {
    const n = Number(reset);
    return n > 1e9 ? Math.max(0, n * 1000 - now) : n * 1000;
  }
  return undefined;
}

/** Exponential backoff with "equal jitter": half fixed (so it grows), half random (so clients spread). */
export function backoffMs(retry: number, initialMs: number, maxMs: number, random: () => number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(retry, 30));
  return base / 2 + (random() * base) / 2;
}

export interface RetryOptions {
  /** One attempt with the given per-attempt timeout. */
  post(timeoutMs: number): Promise<PostResult>;
  requestTimeoutMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Epoch ms after which no new attempt starts (one that started runs to its timeout). The first always runs. */
  deadlineAt: number;
  signal: AbortSignal;
  now(): number;
  random(): number;
  /** Called before each repeated attempt. */
  /** A retry is about to be made; `why` is what went wrong with the last attempt. */
  onRetry(why: string): void;
  /** Checked before each repeated attempt: false → stop so the caller can re-pack. */
  stillValid(): boolean;
}

export type Final =
  | { verdict: 'ok' | 'split' | 'bisect' | 'unauthorized' | 'fail'; status: number; body: string }
  /** Retryable failures until the deadline (or a server delay beyond it). */
  | { verdict: 'gave_up'; why: string; attempts: number }
  | { verdict: 'aborted' }
  | { verdict: 'repack' };

export async function sendWithRetry(o: RetryOptions): Promise<Final> {
  for (let attempt = 0; ; attempt++) {
    if (o.signal.aborted) return { verdict: 'aborted' };
    // The deadline decides whether an attempt starts, not how long it may take: an attempt cut
    // to the few ms left would only fail and hide the real error. shutdown() is the hard stop.
    const r = await o.post(o.requestTimeoutMs);
    if (r.kind === 'aborted') return { verdict: 'aborted' };
    const v = classify(r);
    if (v !== 'retry') {
      return r.kind === 'response' ? { verdict: v, status: r.status, body: r.body } : { verdict: 'fail', status: 0, body: '' };
    }
    const why = r.kind === 'response' ? `HTTP ${r.status}` : `${r.error}${r.code && !r.timedOut ? ` (${r.code})` : ''}`;
    const asked = r.kind === 'response' ? serverDelayMs(r.headers, o.now()) : undefined;
    const wait = asked ?? backoffMs(attempt, o.initialDelayMs, o.maxDelayMs, o.random);
    if (o.now() + wait >= o.deadlineAt) {
      const tail = asked !== undefined && asked > 0 ? `; the server asked to wait ${Math.ceil(asked / 1000)} s` : '';
      return { verdict: 'gave_up', why: why + tail, attempts: attempt + 1 };
    }
    await sleep(wait, o.signal);
    if (o.signal.aborted) return { verdict: 'aborted' };
    if (!o.stillValid()) return { verdict: 'repack' };
    o.onRetry(why);
  }
}
