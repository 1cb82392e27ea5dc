// mergeGit shares an existing layer whenever the merge would equal it (the identity is what lets
// the mapping share the inherited git's JSON and validate it once), and otherwise builds a new
// object with the same value the straightforward copy-and-delete merge gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mergeGit, type GitInfo } from '../src/mapping/transform.js';

const COMMIT_KEYS = ['author_name', 'author_email', 'author_time', 'committer_name', 'committer_email', 'commit_time', 'message', 'tag'];

/**
 * The plain definition: copy each lower result; under a layer naming another repository keep
 * nothing, under one naming another commit drop what describes the commit (authors, times,
 * message, tag), and under one naming a tag or branch drop both.
 */
function reference(...layers: Array<GitInfo | undefined>): GitInfo | undefined {
  let out: GitInfo | undefined;
  for (const layer of layers) {
    if (!layer) continue;
    let next: GitInfo = { ...out };
    if (layer.repository_url !== undefined && next.repository_url !== undefined && layer.repository_url !== next.repository_url) next = {};
    if (layer.sha !== undefined && next.sha !== undefined && layer.sha !== next.sha) for (const k of COMMIT_KEYS) delete next[k];
    if (layer.tag !== undefined || layer.branch !== undefined) {
      delete next.tag;
      delete next.branch;
    }
    out = Object.assign(next, layer);
  }
  return out;
}

test('mergeGit: a layer that repeats what is below it shares the object below', () => {
  const inherited = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' };
  const resource = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' };
  const own = { sha: 'a' };
  assert.equal(mergeGit(resource, own), resource);
  assert.equal(mergeGit(undefined, resource, inherited, own), inherited);
  assert.equal(mergeGit(undefined, undefined, inherited, { ...inherited }), inherited);
});

test('mergeGit: a layer that names everything below it is the result itself', () => {
  const resource = { repository_url: 'https://x/r.git', sha: 'a' };
  const inherited = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main', author_email: 'd@x' };
  // The pipeline's git already holds the resource's: a child shares its parent's object.
  assert.equal(mergeGit(undefined, resource, inherited), inherited);
  // A tag replaces the branch below; nothing else survives from below: the layer is the result.
  const tagged = { repository_url: 'https://x/r.git', sha: 'a', tag: 'v1' };
  assert.equal(mergeGit({ repository_url: 'https://x/r.git', sha: 'b', branch: 'main' }, tagged), tagged);
});

test('mergeGit: a layer that adds something gives a new object, keys in merge order', () => {
  const below = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' };
  const layer = { sha: 'b', tag: 'v2' };
  const out = mergeGit(below, layer);
  assert.notEqual(out, below);
  assert.notEqual(out, layer);
  assert.equal(JSON.stringify(out), JSON.stringify(reference(below, layer)));
  assert.equal(JSON.stringify(out), '{"repository_url":"https://x/r.git","sha":"b","tag":"v2"}');
  // The inputs are left alone.
  assert.deepEqual(below, { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' });
});

test('mergeGit: the same value as the plain definition, for any layers (property)', () => {
  const key = fc.constantFrom('repository_url', 'sha', 'branch', 'tag', 'author_email', 'committer_name', 'message');
  const layer = fc.option(fc.dictionary(key, fc.constantFrom('a', 'b'), { maxKeys: 4 }).map((d) => ({ ...d })), { nil: undefined });
  fc.assert(
    fc.property(fc.array(layer, { maxLength: 4 }), (layers) => {
      const got = mergeGit(...layers);
      const want = reference(...layers);
      assert.deepEqual(got === undefined ? undefined : { ...got }, want);
      // A shared result is one of the inputs, untouched.
      if (got !== undefined && (layers as Array<GitInfo | undefined>).includes(got)) assert.deepEqual(got, want);
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 2000), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 12 },
  );
});

test('mergeGit: of layers with the same content, the inherited one (next-to-last) is shared', () => {
  // The resource's and the span's own git are new objects for every span; the ancestors' is one.
  const inherited = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' };
  const resource = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main' };
  const own = { branch: 'main', sha: 'a', repository_url: 'https://x/r.git' };
  assert.equal(mergeGit(undefined, resource, inherited, undefined), inherited);
  assert.equal(mergeGit(undefined, resource, inherited, own), inherited);
  assert.equal(mergeGit(undefined, undefined, inherited, own), inherited);
});

test('mergeGit: a layer naming another commit drops what describes the commit below; another repository drops everything below', () => {
  const pipeline = { repository_url: 'https://x/r.git', sha: 'a', branch: 'main', tag: 'v1', author_name: 'Ann', author_email: 'ann@x', commit_time: '2026-01-01T00:00:00Z', message: 'fix' };
  // The same commit: everything is inherited (and shared).
  assert.equal(mergeGit(pipeline, { sha: 'a' }), pipeline);
  // A job that checked out another commit of the same repository keeps the repository and branch only.
  assert.equal(JSON.stringify(mergeGit(pipeline, { sha: 'b', author_name: 'Bo' })), '{"repository_url":"https://x/r.git","sha":"b","branch":"main","author_name":"Bo"}');
  // Another repository: only the layer.
  const other = { repository_url: 'https://x/other.git', sha: 'c' };
  assert.equal(mergeGit(pipeline, other), other);
});
