// The bounded queue of batches waiting for a request slot. Memory stays bounded whatever the
// endpoint does: past `capacity` events, the oldest events go (the newest describe the build's
// end, which users look at first).
import { bodySize } from './batcher.js';
import { type Batch, emptySelection, type Selection } from './ledger.js';

export class BatchQueue {
  private items: Batch[] = [];
  private head = 0;
  /** Events of the front batch already pushed out (they are settled by the caller). */
  private frontDropped = 0;
  /** Events queued, counting every event of each queued batch but those pushed out. */
  private count = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

  /** Events queued (settled ones included until their batch is taken). */
  get length(): number {
    return this.count;
  }

  /** Appends; returns the events pushed out of the front to stay within capacity. */
  push(b: Batch): Selection {
    this.items.push(b);
    this.count += b.size;
    const overflow = emptySelection();
    while (this.count > this.capacity) {
      const front = this.items[this.head]!;
      const take = Math.min(this.count - this.capacity, front.size - this.frontDropped);
      for (let i = this.frontDropped; i < this.frontDropped + take; i++) {
        overflow.of.push(front);
        overflow.at.push(i);
      }
      this.count -= take;
      this.frontDropped += take;
      if (this.frontDropped === front.size) this.shift();
    }
    this.compact();
    if (this.head < this.items.length) this.wake();
    return overflow;
  }

  /**
   * Takes the next body's worth from the front: the unsettled events of the first batch, and of
   * the batches after it while the whole of each fits within the caps beside them (small sends,
   * as the live path makes, share a request when they wait together).
   */
  take(maxEvents: number, maxBytes: number): Selection {
    const out = emptySelection();
    let sum = 0;
    while (this.head < this.items.length) {
      const b = this.items[this.head]!;
      let n = 0;
      let bytes = 0;
      for (let i = this.frontDropped; i < b.size; i++) {
        if (!b.settled(i)) {
          n++;
          bytes += b.bytesOf(i);
        }
      }
      if (out.at.length > 0 && (out.at.length + n > maxEvents || bodySize(out.at.length + n, sum + bytes) > maxBytes)) break;
      for (let i = this.frontDropped; i < b.size; i++) {
        if (!b.settled(i)) {
          out.of.push(b);
          out.at.push(i);
        }
      }
      sum += bytes;
      this.count -= b.size - this.frontDropped;
      this.shift();
    }
    this.compact();
    return out;
  }

  /** Empties the queue. */
  drain(): void {
    this.items = [];
    this.head = 0;
    this.frontDropped = 0;
    this.count = 0;
  }

  /** Resolves when the queue holds something (or wake() is called). Not a timer: keeps nothing alive. */
  whenNonEmpty(): Promise<void> {
    if (this.head < this.items.length) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private shift(): void {
    this.items[this.head] = undefined as unknown as Batch;
    this.head++;
    this.frontDropped = 0;
  }

  private compact(): void {
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
