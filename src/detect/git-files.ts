// HEAD's commit read from the repository's files, without starting `git`: what
// `git log -1 --format=…` would say (detect/git.ts), in the plain case only. Starting a process
// costs its host more than the spawn: a process that has forked tears down 4–6 ms slower
// (docs/PERFORMANCE.md, "short-lived process"), and `run` pays the spawn on its path. Anything
// outside the plain case — a worktree, variables pointing git elsewhere, replaced objects, a
// commit stored as a delta in a pack, more than one tag at HEAD — gives undefined, and git is
// asked as before. So this reader never has to be right about git's corner cases: only about
// the common one, which tests compare with git's own output.
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { openRegular, readDirEntries, readDirNames, readRegular, readRegularText, statPath } from './regular-file.js';

type Env = Record<string, string | undefined>;

/** HEAD's commit as `git log -1` gives it (before the origin URL is added). */
export interface HeadCommit {
  sha: string;
  author_name: string;
  author_email: string;
  author_time: string;
  committer_name: string;
  committer_email: string;
  commit_time: string;
  message: string;
  branch?: string;
  tag?: string;
}

/** Variables under which git would read another repository, objects or history than `<cwd>/.git`. */
const GIT_ENV = /^GIT_(DIR|WORK_TREE|COMMON_DIR|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|REPLACE_REF_BASE|GRAFT_FILE|CONFIG|CONFIG_PARAMETERS|CONFIG_COUNT|NAMESPACE)$/;
const SHA = /^[0-9a-f]{40}$/;
const SHA_LINE = /^[0-9a-f]{40}\n$/;

/** A ref file's text (HEAD detached, a loose ref), `<sha>\n`, → the sha; anything else is git's to read. */
function shaLine(text: string): string {
  return SHA_LINE.test(text) ? text.slice(0, 40) : notPlain();
}
/** Past these, git is faster to ask than the files are to read. */
const MAX_REFS_FILE = 16 << 20;
/** HEAD, a loose ref: `<sha>\n` or `ref: <name>\n`. */
const MAX_REF_FILE = 64 << 10;
const MAX_LOOSE_TAGS = 2000;
const MAX_TAG_OBJECT_READS = 64;
const MAX_OBJECT = 4 << 20;

/** A reason to leave it to git; caught at the top, never seen by callers. */
class NotPlain extends Error {}
const notPlain = (): never => {
  throw new NotPlain();
};

/** HEAD's commit, from `<cwd>/.git`'s files; undefined when it is not the plain case (git is then asked). Never rejects. */
export async function headCommitFromFiles(cwd: string, env: Env): Promise<HeadCommit | undefined> {
  try {
    return await read(cwd, env);
  } catch {
    // NotPlain, or an unreadable file: git knows better.
    return undefined;
  }
}

async function read(cwd: string, env: Env): Promise<HeadCommit> {
  for (const k of Object.keys(env)) if (GIT_ENV.test(k) && env[k] !== undefined) notPlain();
  const gitDir = join(cwd, '.git');
  const [dirStat, head, config, packedText, grafts, replaceDir] = await Promise.all([
    statPath(gitDir),
    readRegularText(join(gitDir, 'HEAD'), MAX_REF_FILE),
    readRegularText(join(gitDir, 'config'), MAX_REFS_FILE),
    unlessMissing(readRegularText(join(gitDir, 'packed-refs'), MAX_REFS_FILE)).then((text) => text ?? ''),
    statPath(join(gitDir, 'info', 'grafts')).then(
      () => true,
      () => false,
    ),
    readDirNames(join(gitDir, 'refs', 'replace')).catch(() => [] as string[]),
  ]);
  // A worktree's or submodule's `.git` is a file pointing elsewhere; extensions change the
  // formats (reftable, SHA-256 objects); grafts and replace refs change what HEAD's commit is.
  if (!dirStat.isDirectory() || /^\s*\[\s*extensions\s*\]/im.test(config) || grafts || replaceDir.length > 0) notPlain();
  const packed = parsePackedRefs(packedText);
  for (const name of packed.refs.keys()) if (name.startsWith('refs/replace/')) notPlain();

  let branch: string | undefined;
  let sha: string;
  const symbolic = /^ref: (refs\/heads\/[^\s]+)\n?$/.exec(head);
  // git refuses ref names with `..` or a backslash; so does this reader (no file outside `.git`).
  if (symbolic && /\.\.|\\/.test(symbolic[1]!)) notPlain();
  if (symbolic) {
    branch = symbolic[1]!.slice('refs/heads/'.length);
    sha = await resolveRef(gitDir, symbolic[1]!, packed);
  } else {
    sha = shaLine(head);
  }

  const objects = new Objects(gitDir);
  const [commit, tag] = await Promise.all([objects.read(sha), tagAt(gitDir, sha, packed, objects)]);
  if (commit.type !== 'commit') notPlain();
  return { sha, ...parseCommit(commit.body), ...(branch !== undefined && { branch }), ...(tag !== undefined && { tag }) };
}

/** A read's result; undefined when the file or directory does not exist, any other failure git's (NotPlain). */
function unlessMissing<T>(read: Promise<T>): Promise<T | undefined> {
  return read.catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : notPlain()));
}

interface PackedRefs {
  refs: Map<string, { sha: string; peeled?: string }>;
  /** The file says which tags are annotated: a tag without a `^` line is not. */
  tagsPeeled: boolean;
}

/**
 * `.git/packed-refs`: `<sha> <name>` lines, each optionally followed by `^<peeled sha>`. Throws
 * on a line it cannot read (the repository is then left to git).
 */
export function parsePackedRefs(text: string): PackedRefs {
  const refs = new Map<string, { sha: string; peeled?: string }>();
  let tagsPeeled = false;
  let last: { sha: string; peeled?: string } | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# pack-refs with:')) {
      // "peeled": tags are peeled; "fully-peeled": every ref is.
      tagsPeeled = / (fully-)?peeled( |$)/.test(line.slice('# pack-refs with:'.length).replace(/\s+$/, '') + ' ');
      continue;
    }
    if (line.startsWith('^')) {
      const peeled = line.slice(1);
      if (!last || !SHA.test(peeled)) notPlain();
      last!.peeled = peeled;
      continue;
    }
    const m = /^([0-9a-f]{40}) (refs\/\S+)$/.exec(line);
    if (!m) notPlain();
    last = { sha: m![1]! };
    refs.set(m![2]!, last);
  }
  return { refs, tagsPeeled };
}

/** A ref's sha: its loose file first (it wins over packed-refs, as in git), then packed-refs. */
async function resolveRef(gitDir: string, ref: string, packed: PackedRefs): Promise<string> {
  const loose = await unlessMissing(readRegularText(join(gitDir, ref), MAX_REF_FILE));
  if (loose !== undefined) {
    // A symbolic ref inside refs/ (rare), or anything else: git's to follow.
    return shaLine(loose);
  }
  const p = packed.refs.get(ref);
  // An unborn branch (no commit yet): git says there is nothing, and is asked to say so.
  return p ? p.sha : notPlain();
}

/**
 * The one tag at `sha`, or undefined when none is. Lightweight tags point at it; annotated tags
 * point at a tag object that (peeled) does. More than one tag: git's order among them is its own,
 * so git is asked.
 */
async function tagAt(gitDir: string, sha: string, packed: PackedRefs, objects: Objects): Promise<string | undefined> {
  const tags = new Map<string, { sha: string; peeled?: string; known: boolean }>();
  for (const [name, r] of packed.refs) {
    if (name.startsWith('refs/tags/')) tags.set(name, { ...r, known: packed.tagsPeeled || r.peeled !== undefined });
  }
  const loose = await looseRefs(gitDir, 'refs/tags');
  for (const [name, value] of loose) tags.set(name, { sha: value, known: false });
  let reads = 0;
  const found: string[] = [];
  for (const [name, r] of tags) {
    let target = r.peeled ?? r.sha;
    if (target !== sha && !r.known) {
      // Only a tag object can lead to the commit; follow it (tags of tags too).
      for (let depth = 0; depth < 8 && target !== sha; depth++) {
        if (++reads > MAX_TAG_OBJECT_READS) notPlain();
        const o = await objects.read(target);
        if (o.type !== 'tag') break;
        const m = /^object ([0-9a-f]{40})\n/.exec(o.body.toString('latin1'));
        if (!m) notPlain();
        target = m![1]!;
      }
    }
    if (target === sha) found.push(name.slice('refs/tags/'.length));
  }
  if (found.length > 1) notPlain();
  return found[0];
}

/** Loose ref files under `dir` (e.g. refs/tags), recursively: name → sha. */
async function looseRefs(gitDir: string, dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const entries = (await unlessMissing(readDirEntries(join(gitDir, rel)))) ?? [];
    for (const e of entries) {
      const name = `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(name);
      else if (e.isFile()) {
        if (out.size >= MAX_LOOSE_TAGS) notPlain();
        out.set(name, shaLine(await readRegularText(join(gitDir, name), MAX_REF_FILE)));
      } else notPlain();
    }
  };
  await walk(dir);
  return out;
}

interface GitObject {
  type: string;
  body: Buffer;
}

const PACK_TYPES: Record<number, string> = { 1: 'commit', 2: 'tree', 3: 'blob', 4: 'tag' };

/** Objects by sha: loose ones, then whole (undeltified) ones in packs. */
class Objects {
  private packs: Promise<string[]> | undefined;
  constructor(private readonly gitDir: string) {}

  async read(sha: string): Promise<GitObject> {
    const path = join(this.gitDir, 'objects', sha.slice(0, 2), sha.slice(2));
    // Whatever it inflates to, a file larger than MAX_OBJECT is no commit or tag worth reading here.
    const loose = await unlessMissing(readRegular(path, MAX_OBJECT));
    if (loose) {
      const raw = inflateSync(loose, { maxOutputLength: MAX_OBJECT + 64 });
      const nul = raw.indexOf(0);
      const m = /^(commit|tree|blob|tag) (\d+)$/.exec(raw.subarray(0, nul < 0 ? 0 : nul).toString('latin1'));
      if (!m || Number(m[2]) !== raw.length - nul - 1) notPlain();
      return { type: m![1]!, body: raw.subarray(nul + 1) };
    }
    this.packs ??= readDirNames(join(this.gitDir, 'objects', 'pack')).then(
      (names) => names.filter((n) => n.endsWith('.idx')).map((n) => join(this.gitDir, 'objects', 'pack', n.slice(0, -4))),
      () => [],
    );
    for (const pack of await this.packs) {
      const offset = await findInIndex(`${pack}.idx`, sha);
      if (offset !== undefined) return readPacked(`${pack}.pack`, offset);
    }
    // In an alternate object store, or nowhere: git's to say.
    return notPlain();
  }
}

/** The object's offset in the pack, from a version-2 pack index; undefined when it is not there. */
async function findInIndex(idxPath: string, sha: string): Promise<number | undefined> {
  const fh = await openRegular(idxPath);
  try {
    const head = Buffer.alloc(8 + 256 * 4);
    await fh.read(head, 0, head.length, 0);
    if (head.readUInt32BE(0) !== 0xff744f63 || head.readUInt32BE(4) !== 2) notPlain();
    const first = parseInt(sha.slice(0, 2), 16);
    const total = head.readUInt32BE(8 + 255 * 4);
    const lo = first === 0 ? 0 : head.readUInt32BE(8 + (first - 1) * 4);
    const hi = head.readUInt32BE(8 + first * 4);
    // A damaged index must not make us allocate what it claims: 28 bytes per object at least.
    if (hi > total || 8 + 1024 + total * 28 > fh.size) notPlain();
    if (hi <= lo) return undefined;
    const names = Buffer.alloc((hi - lo) * 20);
    await fh.read(names, 0, names.length, 8 + 1024 + lo * 20);
    const want = Buffer.from(sha, 'hex');
    // Sorted: binary search.
    let a = 0;
    let b = hi - lo;
    let at = -1;
    while (a < b) {
      const mid = (a + b) >>> 1;
      const c = names.compare(want, 0, 20, mid * 20, mid * 20 + 20);
      if (c === 0) {
        at = lo + mid;
        break;
      }
      if (c > 0) b = mid;
      else a = mid + 1;
    }
    if (at < 0) return undefined;
    const offsets = 8 + 1024 + total * 24;
    const small = Buffer.alloc(4);
    await fh.read(small, 0, 4, offsets + at * 4);
    const off = small.readUInt32BE(0);
    if ((off & 0x80000000) === 0) return off;
    const large = Buffer.alloc(8);
    await fh.read(large, 0, 8, offsets + total * 4 + (off & 0x7fffffff) * 8);
    return Number(large.readBigUInt64BE(0));
  } finally {
    await fh.close();
  }
}

/** A whole object at `offset` in a pack; a delta (or anything larger than a commit should be) is git's. */
async function readPacked(packPath: string, offset: number): Promise<GitObject> {
  const fh = await openRegular(packPath);
  try {
    for (let window = 64 << 10; ; window *= 4) {
      const buf = Buffer.alloc(window);
      const bytesRead = await fh.read(buf, 0, window, offset);
      const data = buf.subarray(0, bytesRead);
      let c = data[0] ?? notPlain();
      const type = PACK_TYPES[(c >> 4) & 7] ?? notPlain();
      let size = c & 15;
      let shift = 4;
      let i = 1;
      while (c & 0x80) {
        c = data[i++] ?? notPlain();
        size += (c & 0x7f) * 2 ** shift;
        shift += 7;
      }
      if (size > MAX_OBJECT) notPlain();
      try {
        // Inflating stops at the end of the object's stream; what follows it in the window is ignored.
        const body = inflateSync(data.subarray(i), { maxOutputLength: MAX_OBJECT + 64 });
        if (body.length !== size) notPlain();
        return { type, body };
      } catch (err) {
        // Cut off by the window: read more, unless the pack ended there.
        if (err instanceof NotPlain || bytesRead < window || window >= MAX_OBJECT * 2) throw err;
      }
    }
  } finally {
    await fh.close();
  }
}

// `Name <email> 1700000000 +0100`: one `<` and one `>`, as git writes them.
const IDENT = /^([^<>\n]*?) *<([^<>\n]*)> (\d{1,12}) ([+-])(\d\d)(\d\d)$/;

/** A commit object's body → its author, committer, their times (strict ISO 8601, as `%aI`) and message. */
export function parseCommit(body: Buffer): Omit<HeadCommit, 'sha' | 'branch' | 'tag'> {
  const end = body.indexOf('\n\n');
  const headers = body.subarray(0, end < 0 ? body.length : end).toString('utf8');
  const message = end < 0 ? '' : body.subarray(end + 2).toString('utf8');
  let author: RegExpExecArray | null | undefined;
  let committer: RegExpExecArray | null | undefined;
  for (const line of headers.split('\n')) {
    if (line.startsWith(' ')) continue; // continued header (gpgsig, mergetag)
    const sp = line.indexOf(' ');
    const key = sp < 0 ? line : line.slice(0, sp);
    const value = line.slice(sp + 1);
    if (key === 'author') {
      if (author !== undefined) notPlain();
      author = IDENT.exec(value);
    } else if (key === 'committer') {
      if (committer !== undefined) notPlain();
      committer = IDENT.exec(value);
    } else if (key === 'encoding' && !/^utf-?8$/i.test(value)) {
      // git would re-encode the text to UTF-8.
      notPlain();
    }
  }
  if (!author || !committer) return notPlain();
  return {
    author_name: author[1]!,
    author_email: author[2]!,
    author_time: isoStrict(author),
    committer_name: committer[1]!,
    committer_email: committer[2]!,
    commit_time: isoStrict(committer),
    message,
  };
}

/** `%aI`: the time in the commit's own offset, `2024-03-01T10:00:00+01:00` (`+00:00` for UTC, as git writes it). */
function isoStrict(m: RegExpExecArray): string {
  const seconds = Number(m[3]);
  const hh = Number(m[5]);
  const mm = Number(m[6]);
  if (mm >= 60) notPlain();
  const offset = (m[4] === '-' ? -1 : 1) * (hh * 60 + mm);
  const d = new Date((seconds + offset * 60) * 1000);
  const y = d.getUTCFullYear();
  if (!(y >= 1970 && y <= 9999)) notPlain();
  const p = (n: number): string => String(n).padStart(2, '0');
  const sign = offset < 0 ? '-' : '+';
  return `${y}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${sign}${m[5]}:${m[6]}`;
}
