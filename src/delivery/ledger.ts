// Settlement bookkeeping: every event handed to delivery is settled exactly once (delivered,
// dropped with a reason, or spooled), and the counters follow from that single place.
import type { Diagnostics, DropReason } from '../diagnostics.js';
import type { ReadyEvent } from './types.js';

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

export interface Item extends ReadyEvent {
  settled: boolean;
  /** A send of it failed and was retried: undelivered at shutdown, it counts as delivery_failed. */
  retried: boolean;
  readonly group: Group;
}

export class Ledger {
  private seq = 0;
  private readonly groups = new Set<Group>();
  private readonly open = new Set<Item>();

  constructor(private readonly diagnostics: Diagnostics) {}

  /** Registers events as one group; `always` groups are awaited by every later flush too. */
  admit(events: readonly ReadyEvent[], opts: { always?: boolean; onDone?: () => void } = {}): { items: Item[]; group: Group } {
    let resolve!: (ok: boolean) => void;
    const done = new Promise<boolean>((r) => (resolve = r));
    const group: Group = {
      seq: opts.always ? 0 : ++this.seq,
      remaining: events.length,
      allDelivered: true,
      done,
      resolve,
      onDone: opts.onDone,
    };
    const items = events.map((e): Item => ({
      json: e.json,
      bytes: e.bytes,
      timeMs: e.timeMs,
      describe: e.describe,
      settled: false,
      retried: false,
      group,
    }));
    this.diagnostics.counters.queued += items.length;
    for (const it of items) this.open.add(it);
    if (items.length === 0) this.finish(group);
    else this.groups.add(group);
    return { items, group };
  }

  /** Settles the items not settled yet; returns how many that was. */
  settle(items: readonly Item[], outcome: Outcome): number {
    const c = this.diagnostics.counters;
    let n = 0;
    for (const it of items) {
      if (it.settled) continue;
      it.settled = true;
      n++;
      this.open.delete(it);
      c.queued--;
      const g = it.group;
      if (outcome !== 'delivered') g.allDelivered = false;
      if (--g.remaining === 0) this.finish(g);
    }
    if (n === 0) return 0;
    if (outcome === 'delivered') c.eventsSent += n;
    else if (outcome === 'spooled') c.spooled += n;
    else this.diagnostics.drop(outcome, n);
    return n;
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

  unsettled(): Item[] {
    return [...this.open];
  }

  get openCount(): number {
    return this.open.size;
  }
}
