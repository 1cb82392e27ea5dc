// Background timers are unref()ed: the exporter must never be the reason a CI process stays up.

/** Resolves after `ms`, or at once when `signal` aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
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
  }, ms);
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
