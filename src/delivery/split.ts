// Delivering one batch: retries (retry.ts), then the answers that need the batch cut up —
// 413 → halves until each fits, 400 → bisection down to the events Datadog rejects, so that
// one bad event never costs its 999 neighbours.
import { encodeSelection } from './batcher.js';
import { allLive, type Batch, type Selection, sliceSelection, splitLive } from './ledger.js';
import { sendWithRetry } from './retry.js';
import type { Transport } from './transport.js';

export interface BatchContext {
  transport: Transport;
  requestTimeoutMs: number;
  retry: { initialDelayMs: number; maxDelayMs: number; deadlineMs: number };
  signal: AbortSignal;
  now(): number;
  random(): number;
  /** Whether event i of a batch is still young enough for Datadog to accept it, as of now. */
  freshNow(): (b: Batch, i: number) => boolean;
  onRequest(): void;
  onRetry(items: Selection, why: string): void;
  delivered(items: Selection): void;
  tooOld(items: Selection): void;
  /** A single event answered 413. */
  tooLarge(item: Selection, detail: string): void;
  /** A single event answered 400. */
  rejected(item: Selection, detail: string): void;
  unauthorized(items: Selection, status: number): void;
  /** A non-retryable answer other than the above. */
  failed(items: Selection, status: number, detail: string): void;
  /** Retries ran out. */
  gaveUp(items: Selection, why: string, attempts: number): void;
}

/** Datadog's `{"errors":[{"detail":...}]}`, as one line. */
export function errorDetail(body: string, status: number): string {
  try {
    const errs = (JSON.parse(body) as { errors?: unknown }).errors;
    if (Array.isArray(errs)) {
      const parts = errs
        .map((e: unknown) => {
          if (typeof e === 'string') return e;
          const o = e as { detail?: unknown; title?: unknown };
          return typeof o?.detail === 'string' ? o.detail : typeof o?.title === 'string' ? o.title : undefined;
        })
        .filter((s): s is string => !!s);
      if (parts.length > 0) return clip(parts.join('; '));
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = body.trim();
  return text ? clip(text) : `HTTP ${status} with no error detail`;
}

function clip(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length > 500 ? one.slice(0, 500) + '…' : one;
}

/**
 * Sends `items` until each is settled or the context's signal fires (then unsettled ones are left
 * for shutdown to spool). The retry deadline covers the whole batch, splits included, but every
 * piece of a split gets at least one attempt: those attempts make progress, waiting does not.
 */
export async function deliverBatch(items: Selection, ctx: BatchContext, deadlineAt = ctx.now() + ctx.retry.deadlineMs): Promise<void> {
  let batch = items;
  const fresh = ctx.freshNow();
  if (!allLive(items, fresh)) {
    const { young, old } = splitLive(items, fresh);
    if (old.at.length > 0) ctx.tooOld(old);
    batch = young;
  }
  const n = batch.at.length;
  if (n === 0 || ctx.signal.aborted) return;

  const body = await ctx.transport.prepare(encodeSelection(batch));
  const final = await sendWithRetry({
    post: (timeoutMs) => {
      ctx.onRequest();
      return ctx.transport.post(body, timeoutMs, ctx.signal);
    },
    requestTimeoutMs: ctx.requestTimeoutMs,
    initialDelayMs: ctx.retry.initialDelayMs,
    maxDelayMs: ctx.retry.maxDelayMs,
    deadlineAt,
    signal: ctx.signal,
    now: ctx.now,
    random: ctx.random,
    onRetry: (why) => ctx.onRetry(batch, why),
    stillValid: () => allLive(batch, ctx.freshNow()),
  });

  switch (final.verdict) {
    case 'ok':
      ctx.delivered(batch);
      return;
    case 'aborted':
      return;
    case 'repack':
      return deliverBatch(batch, ctx, deadlineAt);
    case 'gave_up':
      ctx.gaveUp(batch, final.why, final.attempts);
      return;
    case 'unauthorized':
      ctx.unauthorized(batch, final.status);
      return;
    case 'fail':
      ctx.failed(batch, final.status, errorDetail(final.body, final.status));
      return;
    case 'split':
    case 'bisect': {
      if (n === 1) {
        const detail = errorDetail(final.body, final.status);
        if (final.verdict === 'split') ctx.tooLarge(batch, detail);
        else ctx.rejected(batch, detail);
        return;
      }
      const mid = Math.ceil(n / 2);
      // One half after the other: a split never exceeds the request concurrency bound.
      await deliverBatch(sliceSelection(batch, 0, mid), ctx, deadlineAt);
      await deliverBatch(sliceSelection(batch, mid), ctx, deadlineAt);
      return;
    }
  }
}
