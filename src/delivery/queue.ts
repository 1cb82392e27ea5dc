// The bounded queue of events waiting for a request slot. Memory stays bounded whatever the
// endpoint does: past `capacity`, the oldest events go (the newest describe the build's end,
// which users look at first).
import { bodySize, fitsAlone } from './batcher.js';
import type { ReadyEvent } from './types.js';

export class EventQueue<T extends ReadyEvent> {
  private items: T[] = [];
  private head = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Appends; returns the events pushed out of the front to stay within capacity. */
  push(events: readonly T[]): T[] {
    for (const e of events) this.items.push(e);
    let overflow: T[] = [];
    const excess = this.length - this.capacity;
    if (excess > 0) {
      overflow = this.items.slice(this.head, this.head + excess);
      this.head += excess;
    }
    this.compact();
    if (this.length > 0) this.wake();
    return overflow;
  }

  /**
   * Takes the next body's worth of events from the front. Events for which `keep` says no are
   * removed and handed to `discard` instead (too old by now, or settled elsewhere).
   */
  take(maxEvents: number, maxBytes: number, keep: (e: T) => boolean, discard: (e: T) => void): T[] {
    const out: T[] = [];
    let sum = 0;
    while (this.head < this.items.length && out.length < maxEvents) {
      const e = this.items[this.head]!;
      if (!keep(e) || !fitsAlone(e, maxBytes)) {
        this.head++;
        discard(e);
        continue;
      }
      if (out.length > 0 && bodySize(out.length + 1, sum + e.bytes) > maxBytes) break;
      sum += e.bytes;
      out.push(e);
      this.head++;
    }
    this.compact();
    return out;
  }

  /** Empties the queue, returning what it held. */
  drain(): T[] {
    const out = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return out;
  }

  /** Resolves when the queue holds something (or wake() is called). Not a timer: keeps nothing alive. */
  whenNonEmpty(): Promise<void> {
    if (this.length > 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
