// createDelivery: wires the queue, the request workers, retries/splitting, and the spool, and
// owns the lifecycle (send → flush → shutdown). Every event ends in exactly one of: delivered,
// dropped (with a reason, counted), spooled — the Ledger enforces that.
import type { Diagnostics } from '../diagnostics.js';
import { countFitting, fitsAlone } from './batcher.js';
import { type Batch, bytesAt, describeAt, filterSelection, type Group, Ledger, type Selection, sliceSelection, splitLive, wholeBatch } from './ledger.js';
import { BatchQueue } from './queue.js';
import { type BatchContext, deliverBatch } from './split.js';
import { type Claim, Spool } from './spool.js';
import { within } from './timers.js';
import { createTransport } from './transport.js';
import { describeEvent, type Delivery, type DeliveryConfig, type ReadyEvent } from './types.js';

export type { Delivery, DeliveryConfig, ReadyEvent } from './types.js';

/** Rejected events reported one by one; past this, they are only counted. */
const MAX_REJECTION_LINES = 20;

export interface DeliveryHooks {
  /** Clock for the 18-hour rule and deadlines (tests). */
  now?: () => number;
  /** Jitter source (tests). */
  random?: () => number;
  /** Called when an attempt failed and a retry is scheduled: the endpoint is in trouble. */
  onRetry?: () => void;
  /** Called when Datadog accepted a batch: the endpoint is fine again. */
  onDelivered?: () => void;
}

export function createDelivery(config: DeliveryConfig, diagnostics: Diagnostics, hooks: DeliveryHooks = {}): Delivery {
  const now = hooks.now ?? Date.now;
  const random = hooks.random ?? Math.random;
  const ledger = new Ledger(diagnostics);
  const queue = new BatchQueue(Math.max(1, config.maxQueuedEvents));
  const maxEvents = Math.max(1, Math.min(1000, config.maxBatchEvents));
  const maxBytes = config.maxBatchBytes;
  const life = new AbortController();
  let closing = false;
  let stopped = false;
  let rejectionLines = 0;
  /** What went wrong last, so that a shutdown that gives up can say why (DNS, refused, 503...). */
  let lastFailure: string | undefined;
  const site = config.siteLabel;
  // Server text (error details, proxies' pages) goes into messages; a server that echoes the
  // request headers would otherwise put the API key in the CI log. The transport redacts bodies
  // and error texts; Diagnostics redacts every line again, whatever its source.
  diagnostics.protect(config.apiKey);
  const report = diagnostics;
  const transport = createTransport({
    proxy: config.proxy,
    onProblem: (m) => report.once('proxy', m),
    endpoint: config.endpoint,
    apiKey: config.apiKey,
    userAgent: config.userAgent,
    gzip: config.gzip,
    maxConnections: config.maxConcurrentRequests,
  });

  const spool = config.spoolDir
    ? new Spool(config.spoolDir, {
        movedAside: (name, why, to) =>
          report.once(
            'spool:corrupt',
            `spool: moved ${name} to ${to} (${why}); it was not sent. Later such files are moved without a message.`,
          ),
      })
    : undefined;

  /** Young enough for Datadog at `at`: callers read the clock once per use, not per event (~80 ns a read here). */
  const young = (timeMs: number, at: number): boolean => at - timeMs <= config.maxEventAgeMs;
  /** "Is event i of a batch still young", as of now. */
  const freshNow = (): ((b: Batch, i: number) => boolean) => {
    const at = now();
    return (b, i) => young(b.timeMs[i]!, at);
  };

  function tooOldMessage(first: string, n: number): void {
    report.once(
      'drop:too_old',
      `dropped ${first}${n > 1 ? ` and ${n - 1} more` : ''}: older than ${hours(config.maxEventAgeMs)} h, which Datadog rejects. Later ones are counted in dropped.too_old.`,
    );
  }

  function tooLargeMessage(what: string, bytes: number, why: string): void {
    report.once('drop:too_large', `dropped ${what} (${bytes} bytes): ${why}. Later ones are counted in dropped.too_large.`);
  }

  function dropTooOld(items: Selection): void {
    const n = ledger.settle(items, 'too_old');
    if (n > 0) tooOldMessage(describeAt(items), n);
  }

  function dropTooLarge(item: Selection, why: string): void {
    if (ledger.settle(item, 'too_large') > 0) tooLargeMessage(describeAt(item), bytesAt(item), why);
  }

  /** Retries ran out: keep the events for a next process when there is a spool, else drop them. */
  function undeliverable(items: Selection, why: string): void {
    const open = filterSelection(items, (b, i) => !b.settled(i));
    const n = open.at.length;
    if (n === 0) return;
    if (spool && toSpool(open)) {
      report.once('spool:failed-batch', `could not deliver ${n} event(s) to ${site} (${why}); spooled to ${spool.dir} for the next run.`);
      return;
    }
    ledger.settle(open, 'delivery_failed');
    report.once('drop:delivery_failed', `could not deliver ${n} event(s) to ${site}: ${why}. Dropped; later failures are counted in dropped.delivery_failed.`);
  }

  /** Writes events to the spool, one file per body's worth; false (nothing settled) if the disk refused. */
  function toSpool(items: Selection): boolean {
    if (!spool) return false;
    const { young: ok, old } = splitLive(items, freshNow());
    if (old.at.length > 0) dropTooOld(old);
    try {
      // Every event of a batch fits alone (send() set the others apart), so bodies only need cutting.
      for (let k = 0; k < ok.at.length; ) {
        const n = countFitting(ok.at.length, (j) => bytesAt(ok, j), maxEvents, maxBytes, k);
        const part = sliceSelection(ok, k, k + n);
        spool.write(part.at.map((i, j) => part.of[j]!.event(i)));
        ledger.settle(part, 'spooled');
        k += n;
      }
      return true;
    } catch (e) {
      report.once('spool:write', `spool: cannot write to ${spool.dir} (${(e as Error).message}).`);
      return false;
    }
  }

  const ctx: BatchContext = {
    transport,
    requestTimeoutMs: config.requestTimeoutMs,
    retry: config.retry,
    signal: life.signal,
    now,
    random,
    freshNow,
    onRequest: () => diagnostics.counters.requests++,
    onRetry: (items, why) => {
      lastFailure = why;
      hooks.onRetry?.();
      diagnostics.counters.eventsRetried += items.at.length;
      for (let k = 0; k < items.at.length; k++) items.of[k]!.markRetried(items.at[k]!);
    },
    delivered: (items) => {
      hooks.onDelivered?.();
      return ledger.settle(items, 'delivered');
    },
    tooOld: dropTooOld,
    tooLarge: (item, detail) => dropTooLarge(item, `Datadog answered 413 Payload Too Large for it alone (${detail})`),
    rejected: (item, detail) => {
      if (ledger.settle(item, 'rejected') === 0) return;
      if (rejectionLines < MAX_REJECTION_LINES) {
        rejectionLines++;
        report.say(`Datadog rejected ${describeAt(item)} (HTTP 400): ${detail}`);
      } else {
        report.once('drop:rejected:more', `more events were rejected with HTTP 400; they are counted in dropped.rejected.`);
      }
    },
    unauthorized: (items, status) => {
      ledger.settle(items, 'unauthorized');
      report.once(
        'unauthorized',
        `Datadog answered HTTP ${status} for site ${site}: the API key or the site is wrong (check the API key and that it belongs to ${site}). Events are dropped and counted in dropped.unauthorized.`,
      );
    },
    failed: (items, status, detail) => {
      ledger.settle(items, 'delivery_failed');
      report.once('drop:http', `Datadog (${site}) answered HTTP ${status}, which is not retried: ${detail}. Dropped; counted in dropped.delivery_failed.`);
    },
    gaveUp: (items, why, attempts) =>
      undeliverable(items, `${why}, after ${attempts} attempt(s) within the ${config.retry.deadlineMs} ms retry deadline`),
  };

  function internalError(e: unknown): void {
    report.once('internal', `internal delivery error (please report it): ${(e as Error)?.stack ?? String(e)}`);
  }

  /** A bug below must cost one batch, not a worker (and with it a share of the throughput). */
  async function safeDeliver(items: Selection): Promise<void> {
    try {
      await deliverBatch(items, ctx);
    } catch (e) {
      internalError(e);
      undeliverable(items, 'internal error');
    }
  }

  /**
   * Registers `events` as one group and writes them into batches within the caps. Events too
   * large alone are dropped here, and so are events too old when `dropOld` (else the request
   * drops them, as for spooled files).
   */
  function admit(events: readonly ReadyEvent[], opts: { always?: boolean; onDone?: () => void }, dropOld: boolean): { group: Group; batches: Batch[] } {
    const group = ledger.group(events.length, opts);
    const at = now();
    let old = 0;
    let firstOld: ReadyEvent | undefined;
    const ok: ReadyEvent[] = [];
    for (const e of events) {
      if (!fitsAlone(e, maxBytes)) {
        if (ledger.settleLoose(group, 1, 'too_large') > 0) tooLargeMessage(describeEvent(e), e.bytes, `larger alone than the ${maxBytes}-byte request cap`);
        continue;
      }
      if (dropOld && !young(e.timeMs, at)) {
        firstOld ??= e;
        old++;
        continue;
      }
      ok.push(e);
    }
    // Named one at a time, as the first of them (the count is in dropped.too_old).
    if (old > 0 && ledger.settleLoose(group, old, 'too_old') > 0) tooOldMessage(describeEvent(firstOld!), 1);
    const batches: Batch[] = [];
    for (let i = 0; i < ok.length; ) {
      const n = countFitting(ok.length, (k) => ok[k]!.bytes, maxEvents, maxBytes, i);
      batches.push(ledger.batch(group, n === ok.length ? ok : ok.slice(i, i + n)));
      i += n;
    }
    return { group, batches };
  }

  async function runClaim(c: Claim): Promise<void> {
    const { batches } = admit(c.events, { always: true, onDone: () => spool?.release(c) }, false);
    for (const b of batches) await safeDeliver(wholeBatch(b));
  }

  let spoolDone!: () => void;
  const spoolDrained = new Promise<void>((r) => (spoolDone = r));

  async function worker(): Promise<void> {
    while (!stopped) {
      const claim = spool?.claimNext();
      if (claim) {
        await runClaim(claim);
        continue;
      }
      spoolDone();
      const batch = queue.take(maxEvents, maxBytes);
      if (batch.at.length > 0) await safeDeliver(batch);
      else await queue.whenNonEmpty();
    }
  }

  function startWorkers(): void {
    for (let i = 0; i < Math.max(1, config.maxConcurrentRequests); i++) {
      void worker().catch(internalError);
    }
  }
  // Deferred so that a spool backlog is read after construction returns, not inside it.
  queueMicrotask(startWorkers);

  function flush(timeoutMs: number): Promise<void> {
    const mark = ledger.mark();
    const work = (async () => {
      if (spool) await spoolDrained;
      await Promise.all(ledger.pending(mark));
    })();
    return within(work, timeoutMs);
  }

  let shutdownP: Promise<void> | undefined;

  return {
    send(events: ReadyEvent[]): Promise<boolean> {
      try {
        if (closing) {
          const group = ledger.group(events.length);
          if (ledger.settleLoose(group, events.length, 'shutdown') > 0) {
            report.once('drop:after-shutdown', `events sent after shutdown() were dropped (counted in dropped.shutdown).`);
          }
          return group.done;
        }
        const { group, batches } = admit(events, {}, true);
        for (const b of batches) {
          const overflow = queue.push(b);
          if (overflow.at.length > 0 && ledger.settle(overflow, 'queue_overflow') > 0) {
            report.once(
              'drop:queue_overflow',
              `the send queue is full (${config.maxQueuedEvents} events; ${site} is slow or unreachable): dropped the oldest. Counted in dropped.queue_overflow.`,
            );
          }
        }
        return group.done;
      } catch (e) {
        internalError(e);
        return Promise.resolve(false);
      }
    },

    flush,

    shutdown(timeoutMs: number): Promise<void> {
      if (shutdownP) return shutdownP;
      closing = true;
      const started = now();
      // Time kept back from sending for writing the spool (or just settling) after the cut.
      const reserve = Math.min(timeoutMs * 0.2, spool ? 1000 : 100);
      shutdownP = (async () => {
        try {
          await flush(timeoutMs - reserve);
          stopped = true;
          life.abort();
          queue.wake();
          const rest = ledger.unsettled();
          queue.drain();
          if (rest.at.length > 0 && !(spool && toSpool(rest))) {
            const tried = filterSelection(rest, (b, i) => b.retried(i));
            const untried = filterSelection(rest, (b, i) => !b.retried(i));
            const a = ledger.settle(tried, 'delivery_failed');
            const b = ledger.settle(untried, 'shutdown');
            if (a + b > 0) {
              report.say(
                `shutdown: ${a + b} event(s) not delivered to ${site} within ${timeoutMs} ms were dropped${lastFailure ? ` (last failure: ${lastFailure})` : ''}${spool ? '' : '; set spoolDir to keep them for the next run'}.`,
              );
            }
          }
          spoolDone();
          await within(transport.close(), Math.max(0, started + timeoutMs - now()));
        } catch (e) {
          internalError(e);
        }
      })();
      return shutdownP;
    },
  };
}

function hours(ms: number): string {
  return String(Math.round((ms / 3_600_000) * 10) / 10);
}
