// Background timers are unref()ed: the exporter must never be the reason a CI process stays up.
// The one exception is within(): its caller is awaiting that very deadline.

/**
 * Node's timer limit (2^31−1 ms, 24.8 days): a longer delay fires after 1 ms instead. Options
 * are clamped to it (options.ts); every timer here clamps too, whatever reaches it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const clamp = (ms: number): number => (ms > MAX_TIMER_MS ? MAX_TIMER_MS : ms);

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, clamp(ms));
    t.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * A controller that aborts after `ms` or when `parent` aborts, whichever comes first.
 * (AbortSignal.any and AbortSignal.timeout would do, but the first is missing from early Node 20
 * and the second's timer cannot be cleared once the request is done.)
 */
export function linkedTimeout(ms: number, parent: AbortSignal): { signal: AbortSignal; timedOut(): boolean; dispose(): void } {
  const ctl = new AbortController();
  let fired = false;
  const onParent = (): void => ctl.abort(parent.reason);
  const t = setTimeout(() => {
    fired = true;
    ctl.abort(new Error(`request timed out after ${ms} ms`));
  }, clamp(ms));
  t.unref();
  if (parent.aborted) onParent();
  else parent.addEventListener('abort', onParent, { once: true });
  return {
    signal: ctl.signal,
    timedOut: () => fired,
    dispose() {
      clearTimeout(t);
      parent.removeEventListener('abort', onParent);
    },
  };
}

/**
 * Waits for `work`, `ms` at the most (Infinity: no limit). Never rejects. The timer is ref'd on
 * purpose: the caller awaits this deadline (flush, shutdown), and an unref'd one would let Node
 * exit mid-shutdown, before the spool is written.
 */
export function within(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = ms === Infinity ? undefined : setTimeout(resolve, clamp(Math.max(0, ms)));
    const done = (): void => {
      clearTimeout(t);
      resolve();
    };
    void work.then(done, done);
  });
}
