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
import type { SharedFields } from '../mapping/shared.js';
import type { Envelope, Resource } from '../mapping/transform.js';

export const EVENT_TYPE = 'cipipeline_resource_request';

/**
 * The last shared object serialized at each level, and its members. A parent's children are
 * resolved one after another, so consecutive events of a level mostly share the same object.
 */
const lastShared: Record<string, { shared: SharedFields; members: string } | undefined> = {
  pipeline: undefined,
  stage: undefined,
  job: undefined,
  step: undefined,
};

/** `,"pipeline_unique_id":…,"git":{…}`, or '' when there is nothing to add. */
function sharedMembers(level: string, shared: SharedFields | undefined): string {
  if (shared === undefined) return '';
  const memo = lastShared[level];
  if (memo !== undefined && memo.shared === shared) return memo.members;
  const json = JSON.stringify(shared);
  const members = json.length > 2 ? `,${json.slice(1, -1)}` : '';
  lastShared[level] = { shared, members };
  return members;
}

// The envelope (provider_name, env, service) is built anew per event but holds the same values
// for nearly all of them: keep the last one's JSON. Its members are written in that order, the
// order in which mapSpan creates them.
let lastProvider: string | undefined;
let lastEnv: string | undefined;
let lastService: string | undefined;
let lastTail: string | undefined;

/** `}` closing the resource, the envelope's members, and the end of the event. */
function tail(envelope: Envelope): string {
  const { provider_name, env, service } = envelope;
  if (lastTail === undefined || provider_name !== lastProvider || env !== lastEnv || service !== lastService) {
    const json = JSON.stringify({ provider_name, env, service });
    lastTail = `}${json.length > 2 ? `,${json.slice(1, -1)}` : ''}},"type":${JSON.stringify(EVENT_TYPE)}}`;
    lastProvider = provider_name;
    lastEnv = env;
    lastService = service;
  }
  return lastTail;
}

export function eventJson(own: Resource, shared: SharedFields | undefined, envelope: Envelope): string {
  const ownJson = JSON.stringify(own);
  const members = sharedMembers(own.level, shared);
  // `own` always has `level`; were it empty, the first shared member would need no comma.
  const resource = ownJson.length > 2 ? ownJson.slice(0, -1) + members : `{${members.slice(1)}`;
  return `{"attributes":{"resource":${resource}${tail(envelope)}`;
}
