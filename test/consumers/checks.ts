// What the consumer scenarios assert about the events the intake accepted: the README's quick
// start (pipeline → job → step) arrived whole, with the hierarchy rebuilt from parent span IDs.
import assert from 'node:assert/strict';
import type { IntakeEvent } from '../../testkit/intake.js';
import type { ScenarioRun } from './harness.js';

export interface QuickStartNames {
  pipeline: string;
  job: string;
  step: string;
}

/** The README's quick start names. */
export const QUICK_START: QuickStartNames = { pipeline: 'release', job: 'build', step: 'npm ci' };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function one(events: IntakeEvent[], level: string): Record<string, unknown> {
  const found = events.filter((e) => e.attributes.resource.level === level);
  assert.equal(found.length, 1, `expected one ${level} event, got ${found.length}: ${JSON.stringify(events.map((e) => e.attributes.resource.name))}`);
  return found[0]!.attributes.resource;
}

/**
 * Exactly one pipeline, one job and one step, with the given names, linked: the job and the step
 * carry the pipeline's unique_id and name, the step its job's id and name. The program exited 0
 * and the exporter said nothing (a message means something was dropped or fixed).
 */
export function checkQuickStart(run: ScenarioRun, names: QuickStartNames = QUICK_START): void {
  assert.equal(run.exitCode, 0, 'the consumer program failed');
  assert.doesNotMatch(run.stderr, /datadog-ci-pipeline-exporter/, 'the exporter printed a message');
  assert.equal(run.events.length, 3, `expected 3 events, got ${run.events.length}`);
  const pipeline = one(run.events, 'pipeline');
  const job = one(run.events, 'job');
  const step = one(run.events, 'step');
  assert.equal(pipeline.name, names.pipeline);
  assert.equal(job.name, names.job);
  assert.equal(step.name, names.step);
  assert.match(String(pipeline.unique_id), UUID);
  assert.match(String(job.id), UUID);
  assert.match(String(step.id), UUID);
  for (const child of [job, step]) {
    assert.equal(child.pipeline_unique_id, pipeline.unique_id, `${String(child.name)} is not linked to its pipeline`);
    assert.equal(child.pipeline_name, names.pipeline);
  }
  assert.equal(step.job_id, job.id, 'the step is not linked to its job');
  assert.equal(step.job_name, names.job);
  for (const e of [pipeline, job, step]) assert.equal(e.status, 'success');
  assert.deepEqual(pipeline.git && (pipeline.git as Record<string, unknown>).branch, 'main');
}
