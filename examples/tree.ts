// Renders received pipeline events as an indented tree. Pure (events in, string out) so that the
// demo's output can be unit-tested on plain objects without running a build.

/** The fields of an event's `resource` the tree reads; anything else is ignored. */
export interface TreeResource {
  level: string;
  name: string;
  status: string;
  start?: string;
  end?: string;
  /** Pipelines. */
  unique_id?: string;
  /** Stages, jobs, steps. */
  id?: string;
  pipeline_unique_id?: string;
  stage_id?: string;
  job_id?: string;
  error?: { message?: string; type?: string } | null;
  [key: string]: unknown;
}

/** Either a request's `data` item (as the intake records it) or a bare resource. */
export type TreeInput = { attributes: { resource: TreeResource } } | TreeResource;

export interface RenderOptions {
  /** ANSI colours (default false: tests and pipes want plain text). */
  color?: boolean;
  /** Longest error message shown, in characters (default 160). */
  maxErrorLength?: number;
}

interface Node {
  r: TreeResource;
  children: Node[];
}

const SYMBOLS: Record<string, string> = {
  success: '✔',
  error: '✖',
  canceled: '⊘',
  skipped: '↷',
  blocked: '⏸',
  running: '…',
};

const COLORS: Record<string, string> = { success: '32', error: '31', canceled: '33', skipped: '90', blocked: '33', running: '36' };

function resourceOf(e: TreeInput): TreeResource {
  const attributes = (e as { attributes?: { resource?: TreeResource } }).attributes;
  return attributes?.resource ?? (e as TreeResource);
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function durationOf(r: TreeResource): string | undefined {
  if (typeof r.start !== 'string' || typeof r.end !== 'string') return undefined;
  return formatDuration(Date.parse(r.end) - Date.parse(r.start));
}

function startMs(r: TreeResource): number {
  const t = typeof r.start === 'string' ? Date.parse(r.start) : NaN;
  return Number.isFinite(t) ? t : Number.MAX_SAFE_INTEGER;
}

function byStart(a: Node, b: Node): number {
  return startMs(a.r) - startMs(b.r) || a.r.name.localeCompare(b.r.name);
}

/** Error text on one line: the tree is read in a terminal, where a stack trace would bury it. */
function errorText(r: TreeResource, max: number): string | undefined {
  const e = r.error;
  if (!e || (typeof e.message !== 'string' && typeof e.type !== 'string')) return undefined;
  let text = [e.type, e.message].filter((s): s is string => typeof s === 'string' && s !== '').join(': ');
  text = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/**
 * Builds the pipeline → stage → job → step tree. Each item hangs under its nearest ancestor that
 * is present: a job without `stage_id` under its pipeline, a step without `job_id` under its stage
 * or pipeline. An item whose named parent is missing is listed apart rather than hidden, because
 * a missing parent is exactly the kind of exporter bug the demo should make visible.
 */
function build(events: readonly TreeInput[]): { roots: Node[]; orphans: Node[] } {
  const pipelines = new Map<string, Node>();
  // Stage/job/step IDs only need to be unique within a pipeline, so they are keyed by both.
  const stages = new Map<string, Node>();
  const jobs = new Map<string, Node>();
  const rest: Node[] = [];
  const key = (pipe: unknown, id: unknown): string => `${String(pipe)}/${String(id)}`;

  for (const e of events) {
    const r = resourceOf(e);
    if (!r || typeof r !== 'object') continue;
    const node: Node = { r, children: [] };
    // A later event for the same item (e.g. finished after running) replaces the earlier one.
    if (r.level === 'pipeline' && r.unique_id !== undefined) pipelines.set(r.unique_id, node);
    else if (r.level === 'stage') stages.set(key(r.pipeline_unique_id, r.id), node);
    else if (r.level === 'job') jobs.set(key(r.pipeline_unique_id, r.id), node);
    else rest.push(node);
  }

  const orphans: Node[] = [];
  const attach = (node: Node, parent: Node | undefined): void => {
    if (parent) parent.children.push(node);
    else orphans.push(node);
  };
  const r = (n: Node): TreeResource => n.r;
  for (const n of stages.values()) attach(n, pipelines.get(String(r(n).pipeline_unique_id)));
  for (const n of jobs.values()) {
    const p = r(n).pipeline_unique_id;
    attach(n, r(n).stage_id != null ? stages.get(key(p, r(n).stage_id)) : pipelines.get(String(p)));
  }
  for (const n of rest) {
    const p = r(n).pipeline_unique_id;
    if (r(n).level !== 'step') attach(n, undefined);
    else if (r(n).job_id != null) attach(n, jobs.get(key(p, r(n).job_id)));
    else if (r(n).stage_id != null) attach(n, stages.get(key(p, r(n).stage_id)));
    else attach(n, pipelines.get(String(p)));
  }

  const sortDeep = (nodes: Node[]): Node[] => {
    nodes.sort(byStart);
    for (const n of nodes) sortDeep(n.children);
    return nodes;
  };
  return { roots: sortDeep([...pipelines.values()]), orphans: sortDeep(orphans) };
}

/** The events as an indented tree, one pipeline after another, ending with a newline. */
export function renderTree(events: readonly TreeInput[], options: RenderOptions = {}): string {
  const color = options.color ?? false;
  const maxErr = options.maxErrorLength ?? 160;
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const { roots, orphans } = build(events);
  const lines: string[] = [];

  const line = (n: Node, prefix: string, branch: string, childPrefix: string): void => {
    const { r } = n;
    const symbol = SYMBOLS[r.status] ?? '?';
    const code = COLORS[r.status] ?? '0';
    const duration = durationOf(r);
    lines.push(
      `${prefix}${branch}${paint(code, symbol)} ${paint('90', r.level)} ${paint('1', r.name)}  ` +
        `${paint(code, r.status)}${duration ? paint('90', `  ${duration}`) : ''}`,
    );
    const err = r.status === 'success' ? undefined : errorText(r, maxErr);
    const under = prefix + childPrefix;
    if (err) lines.push(`${under}${n.children.length > 0 ? '│ ' : '  '} ${paint('31', `↳ ${err}`)}`);
    n.children.forEach((c, i) => {
      const last = i === n.children.length - 1;
      line(c, under, last ? '└─ ' : '├─ ', last ? '   ' : '│  ');
    });
  };

  for (const root of roots) line(root, '', '', '');
  if (orphans.length > 0) {
    lines.push(paint('33', `(${orphans.length} event(s) whose parent was not received)`));
    for (const o of orphans) line(o, '', '  ', '  ');
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '(no pipeline events)\n';
}
