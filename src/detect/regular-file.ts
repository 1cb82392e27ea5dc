// Reading a file of a repository or of git's configuration without trusting what the path is.
// `readFile` reads whatever it is given until it ends: a FIFO blocks a thread-pool thread until
// some writer appears (and the pending request keeps the host process from exiting), and a
// device such as /dev/zero never ends (the host runs out of memory). `git` would hang on such a
// file too, but git runs in a process of its own that detection kills at its deadline; a read
// in our process cannot be killed. So these files are opened without blocking, and read only
// when they are regular files of a bounded size.
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Opening a FIFO for reading waits for a writer unless O_NONBLOCK is set (Windows has neither). */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/** The path is there, but is no regular file of at most the size asked for. */
export class NotRegularFile extends Error {
  constructor(path: string, why: string) {
    super(`${path}: ${why}`);
    this.name = 'NotRegularFile';
  }
}

/**
 * An open handle on `path` if it is a regular file (after symlinks), with its size; the caller
 * closes it. Rejects as `open` does (ENOENT, EACCES…), or with NotRegularFile.
 */
export async function openRegular(path: string): Promise<{ fh: FileHandle; size: number }> {
  const fh = await open(path, OPEN_FLAGS);
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw new NotRegularFile(path, 'not a regular file');
    return { fh, size: s.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** The bytes of `path`, a regular file of at most `max` bytes (else NotRegularFile; ENOENT etc. as `open`). */
export async function readRegular(path: string, max: number): Promise<Buffer> {
  const { fh, size } = await openRegular(path);
  try {
    if (size > max) throw new NotRegularFile(path, `larger than ${max} bytes`);
    // Its size as fstat gave it: a file rewritten meanwhile is read as far as that (git replaces
    // refs by renaming a new file over them, so a reader sees one version or the other).
    const buf = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await fh.read(buf, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  } finally {
    await fh.close();
  }
}

/** readRegular as UTF-8 text. */
export async function readRegularText(path: string, max: number): Promise<string> {
  return (await readRegular(path, max)).toString('utf8');
}
