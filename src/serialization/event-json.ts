// An event's JSON, written once per event (see delivery/types.ts). The result is, byte for byte,
//
//   JSON.stringify({ attributes: { resource: { ...own, ...shared }, ...envelope }, type })
//
// but only `own` is stringified per event. `shared` (links and git, see mapping/shared.ts) is
// one object for all of a parent's children, and the envelope is the same for nearly every
// event, so their JSON is cached and spliced in after the resource's own fields.
//
// Why splicing is exact: `own` always has keys (level, name, ...) and none of `shared`'s, so
// the spread would append `shared`'s keys after `own`'s, in their order, which is what
// `JSON.stringify(shared)` lists; JSON.stringify writes no whitespace, so its inside (between
// the braces) is a valid list of members to append after a comma.
//
// Why caching is exact: a cached string is only reused for the same object (shared) or the same
// values (envelope, written in a fixed order), and neither object changes after its first
// serialization: a shared object is built by the mapping, then validation may only remove its
// git, which it does (for all siblings alike) before the first of them is serialized.
//
// An event is built in parts (buildEvent): a BuiltEvent keeps the resource's own JSON and the
// two cached parts, with its UTF-8 length summed from theirs, and joins them only when delivery
// writes it into a request body. Joined at once, the text was flattened (copied) to be measured
// and then searched whole for the API key; now only the own JSON is measured and searched, and
// the one copy is the write's. (Writing the parts one by one was slower: four Buffer.write
// calls cost more than the copy.)
import type { SharedFields } from '../mapping/shared.js';
import type { Envelope, Resource } from '../mapping/transform.js';
import { redactApiKey } from '../mapping/scrub.js';
import type { ReadyEvent } from '../delivery/types.js';

export const EVENT_TYPE = 'cipipeline_resource_request';

/** What every event starts with; the resource's own members follow. */
const PREFIX = '{"attributes":{"resource":';

/** A cached part of events' JSON, redacted of the API key, and its UTF-8 length. */
interface Part {
  readonly text: string;
  readonly bytes: number;
  /** The needle it was redacted of (undefined: none). */
  readonly needle: string | undefined;
}

const EMPTY_PART: Part = { text: '', bytes: 0, needle: undefined };

function part(text: string, needle: string | undefined): Part {
  const redacted = redactApiKey(text, needle);
  return { text: redacted, bytes: Buffer.byteLength(redacted), needle };
}

/**
 * The last shared object serialized at each level, and its members. A parent's children are
 * resolved one after another, so consecutive events of a level mostly share the same object.
 */
const lastShared: Record<string, { shared: SharedFields; members: Part } | undefined> = {
  pipeline: undefined,
  stage: undefined,
  job: undefined,
  step: undefined,
};

/** `,"pipeline_unique_id":…,"git":{…}`, or '' when there is nothing to add. */
function sharedMembers(level: string, shared: SharedFields | undefined, needle: string | undefined): Part {
  if (shared === undefined) return EMPTY_PART;
  const memo = lastShared[level];
  if (memo !== undefined && memo.shared === shared && memo.members.needle === needle) return memo.members;
  const json = JSON.stringify(shared);
  const members = part(json.length > 2 ? `,${json.slice(1, -1)}` : '', needle);
  lastShared[level] = { shared, members };
  return members;
}

// The envelope (provider_name, env, service) is built anew per event but holds the same values
// for nearly all of them: keep the last one's JSON. Its members are written in that order, the
// order in which mapSpan creates them.
let lastProvider: string | undefined;
let lastEnv: string | undefined;
let lastService: string | undefined;
let lastTail: Part | undefined;

/** `}` closing the resource, the envelope's members, and the end of the event. */
function tail(envelope: Envelope, needle: string | undefined): Part {
  const { provider_name, env, service } = envelope;
  if (lastTail === undefined || provider_name !== lastProvider || env !== lastEnv || service !== lastService || lastTail.needle !== needle) {
    const json = JSON.stringify({ provider_name, env, service });
    lastTail = part(`}${json.length > 2 ? `,${json.slice(1, -1)}` : ''}},"type":${JSON.stringify(EVENT_TYPE)}}`, needle);
    lastProvider = provider_name;
    lastEnv = env;
    lastService = service;
  }
  return lastTail;
}

/** The event's JSON as one string. */
export function eventJson(own: Resource, shared: SharedFields | undefined, envelope: Envelope): string {
  const ownJson = JSON.stringify(own);
  return join(ownJson, sharedMembers(own.level, shared, undefined).text, tail(envelope, undefined).text);
}

function join(ownJson: string, members: string, end: string): string {
  // `own` always has `level`; were it empty, the first shared member would need no comma.
  const resource = ownJson.length > 2 ? ownJson.slice(0, -1) + members : `{${members.slice(1)}`;
  return `${PREFIX}${resource}${end}`;
}

/**
 * An event ready for delivery, in three parts: the resource's own JSON (its closing brace left
 * out when joined), the shared members and the envelope's end (cached, shared by many events).
 */
class BuiltEvent implements ReadyEvent {
  readonly bytes: number;
  constructor(
    private readonly own: string,
    private readonly ownBytes: number,
    private readonly members: Part,
    private readonly end: Part,
    readonly timeMs: number,
    readonly describe: () => string,
  ) {
    this.bytes = PREFIX.length + ownBytes - 1 + members.bytes + end.bytes;
  }

  /** Joined when delivery writes it into a body: one copy, the one the write makes anyway. */
  get json(): string {
    return join(this.own, this.members.text, this.end.text);
  }
}

/**
 * The part-wise path holds when the key (as it appears in JSON) is letters, digits, `_` or `-`
 * only and not within the constant prefix: then no occurrence can straddle two parts (each part
 * starts after, or ends before, a `:`, `,` or brace), so redacting each part alone is redacting
 * the whole. Any other key (never a real Datadog key) takes the joined path.
 */
function partWise(needle: string | undefined): boolean {
  return needle === undefined || (/^[\w-]+$/.test(needle) && !PREFIX.includes(needle));
}

/** One event, ready for delivery: the serialization of `eventJson`, redacted of the API key (`needle`). */
export function buildEvent(
  own: Resource,
  shared: SharedFields | undefined,
  envelope: Envelope,
  needle: string | undefined,
  timeMs: number,
  describe: () => string,
): ReadyEvent {
  const ownJson = JSON.stringify(own);
  if (ownJson.length > 2 && (needle === lastNeedle ? lastPartWise : partWiseFor(needle))) {
    const redacted = redactApiKey(ownJson, needle);
    return new BuiltEvent(redacted, Buffer.byteLength(redacted), sharedMembers(own.level, shared, needle), tail(envelope, needle), timeMs, describe);
  }
  const json = redactApiKey(join(ownJson, sharedMembers(own.level, shared, undefined).text, tail(envelope, undefined).text), needle);
  return { json, bytes: Buffer.byteLength(json), timeMs, describe };
}

let lastNeedle: string | undefined;
let lastPartWise = true;

function partWiseFor(needle: string | undefined): boolean {
  lastPartWise = partWise(needle);
  lastNeedle = needle;
  return lastPartWise;
}
