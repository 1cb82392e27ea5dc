// Reading a file of a repository or of git's configuration without trusting what the path is.
// `readFile` reads whatever it is given until it ends: a FIFO blocks a thread-pool thread until
// some writer appears (and the pending request keeps the host process from exiting), and a
// device such as /dev/zero never ends (the host runs out of memory). `git` would hang on such a
// file too, but git runs in a process of its own that detection kills at its deadline; a read
// in our process cannot be killed. So these files are opened without blocking, and read only
// when they are regular files of a bounded size.
//
// Through node:fs's callback API (promisified), not node:fs/promises: that one loads about ten more Node
// internals (its FileHandle, readline, watchers) that nothing else in a `run` needs, a few ms
// of start-up on a slow machine; node:fs is loaded with Node itself.
import { close, constants, fstat, open, read, readdir, stat, type Dirent, type Stats } from 'node:fs';
import { promisify } from 'node:util';

/** Opening a FIFO for reading waits for a writer unless O_NONBLOCK is set (Windows has neither). */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const readFd = promisify(read);
const readdirP = promisify(readdir);
const statP = promisify(stat);
const closeP = promisify(close);
/** A close that fails has nothing left to release: its error is not the caller's. */
const closeFd = (fd: number): Promise<void> => closeP(fd).catch(() => undefined);

/** The path is there, but is no regular file of at most the size asked for. */
export class NotRegularFile extends Error {
  constructor(path: string, why: string) {
    super(`${path}: ${why}`);
    this.name = 'NotRegularFile';
  }
}

/** An open regular file: its size, positioned reads, and close (the caller's to call). */
export interface RegularFile {
  size: number;
  /** Reads into `buf` at `offset` from `position`; resolves with the bytes read (0 at the end). */
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

/** `stat` (follows symlinks), as a promise. */
export const statPath = (path: string): Promise<Stats> => statP(path);

/** A directory's names, as a promise. */
export const readDirNames = (path: string): Promise<string[]> => readdirP(path);

/** A directory's entries with their types, as a promise. */
export const readDirEntries = (path: string): Promise<Dirent[]> => readdirP(path, { withFileTypes: true });

/**
 * `path` opened if it is a regular file (after symlinks). Rejects as `open` does (ENOENT,
 * EACCES…), or with NotRegularFile.
 */
export async function openRegular(path: string): Promise<RegularFile> {
  const fd = await openFd(path, OPEN_FLAGS);
  try {
    const s = await fstatFd(fd);
    if (!s.isFile()) throw new NotRegularFile(path, 'not a regular file');
    return {
      size: s.size,
      read: async (buf, offset, length, position) => (await readFd(fd, buf, offset, length, position)).bytesRead,
      close: () => closeFd(fd),
    };
  } catch (err) {
    await closeFd(fd);
    throw err;
  }
}

/** The bytes of `path`, a regular file of at most `max` bytes (else NotRegularFile; ENOENT etc. as `open`). */
export async function readRegular(path: string, max: number): Promise<Buffer> {
  const file = await openRegular(path);
  try {
    const { size } = file;
    if (size > max) throw new NotRegularFile(path, `larger than ${max} bytes`);
    // Its size as fstat gave it: a file rewritten meanwhile is read as far as that (git replaces
    // refs by renaming a new file over them, so a reader sees one version or the other).
    const buf = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const n = await file.read(buf, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return buf.subarray(0, filled);
  } finally {
    await file.close();
  }
}

/** readRegular as UTF-8 text. */
export async function readRegularText(path: string, max: number): Promise<string> {
  return (await readRegular(path, max)).toString('utf8');
}
