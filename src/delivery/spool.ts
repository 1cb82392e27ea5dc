// The durable spool: what could not be delivered is written to `dir`, one file per batch, and a
// later delivery sends it. Every step is a rename, so a reader never sees half a file and two
// processes never send the same file: the one whose rename succeeds owns it.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeEvent, type ReadyEvent } from './types.js';

export const SPOOL_FORMAT = 'datadog-ci-pipeline-exporter/spool';
export const SPOOL_VERSION = 1;
export const CORRUPT_DIR = 'corrupt';
/** A temp file older than this was left by a writer that crashed mid-write. */
const STALE_TEMP_MS = 3_600_000;

const FILE = /^spool-[0-9]+-[0-9]+-[0-9a-f]+\.json$/;
const CLAIMED = /^(spool-[0-9]+-[0-9]+-[0-9a-f]+\.json)\.claimed-([0-9]+)-[0-9a-f]+$/;

interface SpoolFile {
  format: string;
  version: number;
  written: string;
  events: Array<{ json: string; timeMs: number; describe: string }>;
}

export interface Claim {
  /** The claimed file's current path: removed once all its events are settled. */
  path: string;
  name: string;
  events: ReadyEvent[];
}

export interface SpoolWarnings {
  /** A file that is not a spool file of ours was moved aside. */
  movedAside(name: string, why: string, to: string): void;
}

/** 12 hex digits, unique enough beside the pid in a name (Math.random: node:crypto is not loaded for it). */
function rand(): string {
  return Math.floor(Math.random() * 2 ** 48).toString(16).padStart(12, '0');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, it is just not ours to signal.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parse(text: string): ReadyEvent[] {
  const f = JSON.parse(text) as Partial<SpoolFile> | null;
  if (!f || typeof f !== 'object' || f.format !== SPOOL_FORMAT) throw new Error('not a spool file');
  if (f.version !== SPOOL_VERSION) throw new Error(`spool format version ${String(f.version)}, expected ${SPOOL_VERSION}`);
  if (!Array.isArray(f.events)) throw new Error('no events array');
  return f.events.map((e, i) => {
    if (!e || typeof e.json !== 'string' || typeof e.describe !== 'string' || !Number.isFinite(e.timeMs)) {
      throw new Error(`event ${i} is malformed`);
    }
    const data = JSON.parse(e.json) as unknown;
    if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error(`event ${i} is not a JSON object`);
    return { json: e.json, bytes: Buffer.byteLength(e.json, 'utf8'), timeMs: e.timeMs, describe: e.describe };
  });
}

/**
 * Claims this process holds now, by file name. A claim with our PID that is not in here was
 * left by an earlier process that had the same PID (every run is PID 1 in a container).
 */
const ownClaims = new Set<string>();

export class Spool {
  private backlog: string[] | undefined;

  constructor(
    readonly dir: string,
    private readonly warn: SpoolWarnings,
  ) {}

  /** Files present when first asked: later files are this process's own writes, for a next process. */
  private list(): string[] {
    if (this.backlog) return this.backlog;
    let names: string[] = [];
    try {
      names = readdirSync(this.dir, { withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => d.name);
    } catch {
      // No directory yet: nothing spooled.
    }
    const own = new Set<string>();
    const out: string[] = [];
    for (const n of names.sort()) {
      if (n.startsWith('.')) {
        // A writer's temp file is complete only once renamed; one this old lost its writer.
        if (n.startsWith('.tmp-')) this.removeIfStale(n);
        continue;
      }
      if (FILE.test(n)) out.push(n);
      else {
        const m = CLAIMED.exec(n);
        if (m) {
          // A claim whose process died before finishing: its events are still undelivered.
          const pid = Number(m[2]);
          if (pid === process.pid ? !ownClaims.has(n) : !isAlive(pid)) out.push(n);
        } else own.add(n);
      }
    }
    for (const n of own) this.moveAside(n, 'not a spool file of this exporter');
    this.backlog = out;
    return out;
  }

  /** Takes the next file found at startup; undefined when there is none left. */
  claimNext(): Claim | undefined {
    const names = this.list();
    while (names.length > 0) {
      const name = names.shift()!;
      const base = CLAIMED.exec(name)?.[1] ?? name;
      const claimedName = `${base}.claimed-${process.pid}-${rand()}`;
      const claimed = join(this.dir, claimedName);
      ownClaims.add(claimedName);
      try {
        renameSync(join(this.dir, name), claimed);
      } catch {
        ownClaims.delete(claimedName);
        continue; // another process claimed it first
      }
      let events: ReadyEvent[];
      try {
        events = parse(readFileSync(claimed, 'utf8'));
      } catch (e) {
        ownClaims.delete(claimedName);
        this.moveAside(claimedName, (e as Error).message, base);
        continue;
      }
      return { path: claimed, name: base, events };
    }
    return undefined;
  }

  /** Drops a claimed file once its events are settled. */
  release(c: Claim): void {
    ownClaims.delete(basename(c.path));
    try {
      unlinkSync(c.path);
    } catch {
      // already gone: nothing to undo
    }
  }

  /**
   * Writes one batch as one file: temp file, fsync, rename. Synchronous on purpose: it runs at
   * shutdown, when the event loop may not get another turn. Throws on I/O errors.
   */
  write(events: readonly ReadyEvent[]): string {
    mkdirSync(this.dir, { recursive: true });
    const name = `spool-${String(Date.now()).padStart(13, '0')}-${process.pid}-${rand()}.json`;
    const tmp = join(this.dir, `.tmp-${name}`);
    const file: SpoolFile = {
      format: SPOOL_FORMAT,
      version: SPOOL_VERSION,
      written: new Date().toISOString(),
      events: events.map((e) => ({ json: e.json, timeMs: e.timeMs, describe: describeEvent(e) })),
    };
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify(file));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, join(this.dir, name));
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // best effort
      }
      throw e;
    }
    return name;
  }

  private removeIfStale(name: string): void {
    try {
      const p = join(this.dir, name);
      if (Date.now() - statSync(p).mtimeMs > STALE_TEMP_MS) unlinkSync(p);
    } catch {
      // gone already, or not ours to remove
    }
  }

  private moveAside(name: string, why: string, as = name): void {
    const dest = join(this.dir, CORRUPT_DIR);
    try {
      mkdirSync(dest, { recursive: true });
      renameSync(join(this.dir, name), join(dest, `${as}.${rand()}`));
    } catch {
      // Someone else moved it, or we cannot: either way it is not ours to send.
      return;
    }
    this.warn.movedAside(as, why, dest);
  }
}
