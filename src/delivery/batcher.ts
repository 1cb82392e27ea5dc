// Packing of serialized events into request bodies. Pure: no I/O, no clock.
import type { ReadyEvent } from './types.js';
import type { Selection } from './ledger.js';

const HEAD = '{"data":[';
const TAIL = ']}';
/** Bytes of `{"data":[` + `]}` around the events. */
export const BODY_OVERHEAD = HEAD.length + TAIL.length;

/** UTF-8 size of the body holding events whose sizes sum to `sum`. */
export function bodySize(count: number, sum: number): number {
  return BODY_OVERHEAD + sum + Math.max(0, count - 1);
}

/** Whether the event can be sent at all: alone in a body, within the byte cap. */
export function fitsAlone(ev: ReadyEvent, maxBatchBytes: number): boolean {
  return bodySize(1, ev.bytes) <= maxBatchBytes;
}

/**
 * The body as bytes, written in place: no joined string and no second copy to encode it. Event
 * i's offset goes to starts[i] (starts[n]: one past the last event's end + 1). The buffer is
 * allocated without zeroing, sized from each event's `bytes`; were one of them ever not its
 * JSON's UTF-8 length, the body would carry stale process memory or a cut event, so then every
 * event is measured instead, into a zeroed buffer.
 */
export function encodeBody(events: readonly ReadyEvent[], starts = new Uint32Array(events.length + 1)): Buffer {
  return encodeInto(events, starts, false) ?? encodeInto(events, starts, true)!;
}

/** Sized from `bytes` (unzeroed), or measured (zeroed); undefined when `bytes` did not add up. */
function encodeInto(events: readonly ReadyEvent[], starts: Uint32Array, measure: boolean): Buffer | undefined {
  const n = events.length;
  let size = BODY_OVERHEAD + Math.max(0, n - 1);
  for (const e of events) size += measure ? Buffer.byteLength(e.json, 'utf8') : e.bytes;
  const body = measure ? Buffer.alloc(size) : Buffer.allocUnsafe(size);
  let at = body.write(HEAD, 0, 'latin1');
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    if (i > 0) body[at++] = 44; // ,
    starts[i] = at;
    const written = body.write(e.json, at, 'utf8');
    if (!measure && written !== e.bytes) return undefined;
    at += written;
  }
  starts[n] = at + 1;
  at += body.write(TAIL, at, 'latin1');
  return at === size || measure ? body : undefined;
}

/**
 * How many items from `start` make one body within both caps, item i being `sizeAt(i)` bytes.
 * Items that do not fit alone must have been removed before (see fitsAlone); a first item that
 * still does not fit is taken alone so that a caller can never loop forever.
 */
export function countFitting(length: number, sizeAt: (i: number) => number, maxBatchEvents: number, maxBatchBytes: number, start = 0): number {
  let n = 0;
  let sum = 0;
  for (let i = start; i < length && n < maxBatchEvents; i++) {
    const next = sizeAt(i);
    if (n > 0 && bodySize(n + 1, sum + next) > maxBatchBytes) break;
    sum += next;
    n++;
  }
  return n;
}

/** Splits events into bodies within the caps, in order; events too large alone are set apart. */
export function packBatches<T extends ReadyEvent>(
  events: readonly T[],
  maxBatchEvents: number,
  maxBatchBytes: number,
): { batches: T[][]; tooLarge: T[] } {
  const fit: T[] = [];
  const tooLarge: T[] = [];
  for (const e of events) (fitsAlone(e, maxBatchBytes) ? fit : tooLarge).push(e);
  const batches: T[][] = [];
  for (let i = 0; i < fit.length; ) {
    const n = countFitting(fit.length, (k) => fit[k]!.bytes, maxBatchEvents, maxBatchBytes, i);
    batches.push(fit.slice(i, i + n));
    i += n;
  }
  return { batches, tooLarge };
}

/**
 * The body of a selection: its batch's own body when it is the whole of one batch (no copy),
 * else the selected events' bytes copied out of their batches' bodies (a retry after some
 * events settled, a half after a 413, a merge of small sends).
 */
export function encodeSelection(sel: Selection): Buffer {
  const m = sel.at.length;
  const first = sel.of[0];
  if (first && m === first.size && sel.of[m - 1] === first && sel.at[0] === 0 && sel.at[m - 1] === m - 1) {
    // Whole batch: indices are 0..m-1 of one batch exactly when the ends match and every owner is it.
    let whole = true;
    for (let k = 0; k < m && whole; k++) whole = sel.of[k] === first && sel.at[k] === k;
    if (whole) return first.body;
  }
  let size = BODY_OVERHEAD + Math.max(0, m - 1);
  for (let k = 0; k < m; k++) size += sel.of[k]!.bytesOf(sel.at[k]!);
  const buf = Buffer.allocUnsafe(size);
  let at = buf.write(HEAD, 0, 'latin1');
  for (let k = 0; k < m; ) {
    // Runs of consecutive events of one batch are one copy.
    const b = sel.of[k]!;
    const i = sel.at[k]!;
    let j = k + 1;
    while (j < m && sel.of[j] === b && sel.at[j] === sel.at[j - 1]! + 1) j++;
    if (k > 0) buf[at++] = 44; // ,
    at += b.body.copy(buf, at, b.starts[i]!, b.starts[sel.at[j - 1]! + 1]! - 1);
    k = j;
  }
  buf.write(TAIL, at, 'latin1');
  return buf;
}
