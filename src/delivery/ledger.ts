// Settlement bookkeeping, per batch: every event handed to delivery is settled exactly once
// (delivered, dropped with a reason, or spooled), and the counters follow from that single place.
//
// Events are written into their batch's body as they are admitted: from then on an event is an
// index into its batch (its bytes between two offsets, its time and description in arrays), and
// what a request carries is a Selection, two arrays. No object per event lives until its answer,
// and the events' JSON strings die young (they never reach V8's old generation, whose
// mark-compact pauses are the longest event-loop stalls of a busy export).
import type { Diagnostics, DropReason } from '../diagnostics.js';
import { encodeBody } from './batcher.js';
import { describeEvent, type ReadyEvent } from './types.js';

export type Outcome = 'delivered' | 'spooled' | DropReason;

export interface Group {
  /** Order of creation; 0 for groups that every flush waits for (spooled files). */
  readonly seq: number;
  remaining: number;
  allDelivered: boolean;
  readonly done: Promise<boolean>;
  resolve(ok: boolean): void;
  onDone: (() => void) | undefined;
}

const SETTLED = 1;
/** A send of it failed and was retried: undelivered at shutdown, it counts as delivery_failed. */
const RETRIED = 2;

/** Events admitted together (one send), encoded at once into one request body within the caps. */
export class Batch {
  /** `{"data":[e0,e1,...]}` */
  readonly body: Buffer;
  /** Event i is `body[starts[i], starts[i + 1] - 1)`; starts[n] is one past the last event's end + 1. */
  readonly starts: Uint32Array;
  readonly timeMs: Float64Array;
  readonly describe: Array<ReadyEvent['describe']>;
  /** Per event: SETTLED | RETRIED bits. */
  readonly state: Uint8Array;
  /** Events not settled yet. */
  open: number;

  constructor(
    readonly group: Group,
    events: readonly ReadyEvent[],
  ) {
    const n = events.length;
    const starts = new Uint32Array(n + 1);
    const timeMs = new Float64Array(n);
    const describe = new Array<ReadyEvent['describe']>(n);
    for (let i = 0; i < n; i++) {
      timeMs[i] = events[i]!.timeMs;
      describe[i] = events[i]!.describe;
    }
    this.body = encodeBody(events, starts);
    this.starts = starts;
    this.timeMs = timeMs;
    this.describe = describe;
    this.state = new Uint8Array(n);
    this.open = n;
  }

  get size(): number {
    return this.state.length;
  }

  bytesOf(i: number): number {
    return this.starts[i + 1]! - this.starts[i]! - 1;
  }

  settled(i: number): boolean {
    return (this.state[i]! & SETTLED) !== 0;
  }

  retried(i: number): boolean {
    return (this.state[i]! & RETRIED) !== 0;
  }

  markRetried(i: number): void {
    this.state[i]! |= RETRIED;
  }

  /** Event i as a ReadyEvent again (the spool, messages): decodes its JSON from the body. */
  event(i: number): ReadyEvent {
    return { json: this.body.toString('utf8', this.starts[i]!, this.starts[i + 1]! - 1), bytes: this.bytesOf(i), timeMs: this.timeMs[i]!, describe: this.describe[i]! };
  }
}

/** Some events of some batches, in order: `at[k]` of batch `of[k]`. What one request carries. */
export interface Selection {
  of: Batch[];
  at: number[];
}

export const emptySelection = (): Selection => ({ of: [], at: [] });

/** The whole of one batch. */
export function wholeBatch(b: Batch): Selection {
  const at = new Array<number>(b.size);
  for (let i = 0; i < at.length; i++) at[i] = i;
  return { of: new Array<Batch>(b.size).fill(b), at };
}

/** The events of `sel` for which `keep` says yes. */
export function filterSelection(sel: Selection, keep: (b: Batch, i: number) => boolean): Selection {
  const out = emptySelection();
  for (let k = 0; k < sel.at.length; k++) {
    const b = sel.of[k]!;
    const i = sel.at[k]!;
    if (keep(b, i)) {
      out.of.push(b);
      out.at.push(i);
    }
  }
  return out;
}

/** Whether every event of `sel` is unsettled and `fresh`. */
export function allLive(sel: Selection, fresh: (b: Batch, i: number) => boolean): boolean {
  for (let k = 0; k < sel.at.length; k++) if (sel.of[k]!.settled(sel.at[k]!) || !fresh(sel.of[k]!, sel.at[k]!)) return false;
  return true;
}

/** The unsettled events of `sel`, in order, parted by `fresh` (asked once per event). */
export function splitLive(sel: Selection, fresh: (b: Batch, i: number) => boolean): { young: Selection; old: Selection } {
  const young = emptySelection();
  const old = emptySelection();
  for (let k = 0; k < sel.at.length; k++) {
    const b = sel.of[k]!;
    const i = sel.at[k]!;
    if (b.settled(i)) continue;
    const to = fresh(b, i) ? young : old;
    to.of.push(b);
    to.at.push(i);
  }
  return { young, old };
}

export function sliceSelection(sel: Selection, from: number, to = sel.at.length): Selection {
  return { of: sel.of.slice(from, to), at: sel.at.slice(from, to) };
}

/** Description of the k-th event of a selection, for a message. */
export function describeAt(sel: Selection, k = 0): string {
  return describeEvent({ describe: sel.of[k]!.describe[sel.at[k]!]! });
}

export function bytesAt(sel: Selection, k = 0): number {
  return sel.of[k]!.bytesOf(sel.at[k]!);
}

export class Ledger {
  private seq = 0;
  private readonly groups = new Set<Group>();
  /** Batches with unsettled events, oldest first. */
  private readonly open = new Set<Batch>();

  constructor(private readonly diagnostics: Diagnostics) {}

  /**
   * Registers `count` events as one group (one send); `always` groups are awaited by every later
   * flush too. Its events are then either settled loose (dropped before any batch) or batched.
   */
  group(count: number, opts: { always?: boolean; onDone?: () => void } = {}): Group {
    let resolve!: (ok: boolean) => void;
    const done = new Promise<boolean>((r) => (resolve = r));
    const group: Group = {
      seq: opts.always ? 0 : ++this.seq,
      remaining: count,
      allDelivered: true,
      done,
      resolve,
      onDone: opts.onDone,
    };
    this.diagnostics.counters.queued += count;
    if (count === 0) this.finish(group);
    else this.groups.add(group);
    return group;
  }

  /** Writes events of `group` into a new batch (the caller keeps it within the caps). */
  batch(group: Group, events: readonly ReadyEvent[]): Batch {
    const b = new Batch(group, events);
    if (b.open > 0) this.open.add(b);
    return b;
  }

  /** Settles `n` events of `group` that never made it into a batch. */
  settleLoose(group: Group, n: number, outcome: Outcome): number {
    if (n <= 0) return 0;
    this.diagnostics.counters.queued -= n;
    if (outcome !== 'delivered') group.allDelivered = false;
    group.remaining -= n;
    this.count(n, outcome);
    if (group.remaining === 0) this.finish(group);
    return n;
  }

  /** Settles the events not settled yet; returns how many that was. */
  settle(sel: Selection, outcome: Outcome): number {
    const c = this.diagnostics.counters;
    let n = 0;
    for (let k = 0; k < sel.at.length; k++) {
      const b = sel.of[k]!;
      const i = sel.at[k]!;
      if (b.state[i]! & SETTLED) continue;
      b.state[i]! |= SETTLED;
      n++;
      if (--b.open === 0) this.open.delete(b);
      c.queued--;
      const g = b.group;
      if (outcome !== 'delivered') g.allDelivered = false;
      if (--g.remaining === 0) this.finish(g);
    }
    if (n > 0) this.count(n, outcome);
    return n;
  }

  private count(n: number, outcome: Outcome): void {
    const c = this.diagnostics.counters;
    if (outcome === 'delivered') c.eventsSent += n;
    else if (outcome === 'spooled') c.spooled += n;
    else this.diagnostics.drop(outcome, n);
  }

  private finish(g: Group): void {
    this.groups.delete(g);
    try {
      g.onDone?.();
    } finally {
      g.resolve(g.allDelivered);
    }
  }

  /** Current sequence number: a flush waits for groups at or below it. */
  mark(): number {
    return this.seq;
  }

  pending(upTo: number): Promise<boolean>[] {
    const out: Promise<boolean>[] = [];
    for (const g of this.groups) if (g.seq <= upTo) out.push(g.done);
    return out;
  }

  /** Every unsettled event, oldest batch first. */
  unsettled(): Selection {
    const out = emptySelection();
    for (const b of this.open) {
      for (let i = 0; i < b.size; i++) {
        if (!b.settled(i)) {
          out.of.push(b);
          out.at.push(i);
        }
      }
    }
    return out;
  }

  get openCount(): number {
    let n = 0;
    for (const b of this.open) n += b.open;
    return n;
  }
}
