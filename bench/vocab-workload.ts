// A Jenkins-shaped workload (the OpenTelemetry plugin's vocabulary, no `ci.level`): each build
// is BUILD → Phase: Start/Run/Finalise → Agent → Agent Allocation + 3 stages; each stage runs
// 4 parallel branches of 9 atomic steps. 1 pipeline + 3 stages + 108 jobs = 112 events (as the
// ci.* workload's TYPICAL), from 112 + 5 + 12 = 129 spans. Real SDK spans, built before timing.
import { context, trace, SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { BasicTracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanRecorder } from '../testkit/span-recorder.js';
import { driveExporter, type Contender } from './contenders.js';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface VocabWorkload {
  spans: ReadableSpan[];
  /** Events a correct exporter sends (spans that are no event pass lineage through). */
  events: number;
}

const STAGES = 3;
const BRANCHES = 4;
const STEPS = 9;

export function generateJenkins(count: number): VocabWorkload {
  const collector = new SpanRecorder();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'jenkins', 'service.namespace': 'jenkins', 'jenkins.url': 'https://jenkins.example/' }),
    spanProcessors: [collector],
  });
  const tracer = provider.getTracer('io.jenkins.opentelemetry');
  let events = 0;
  const now = Date.now();
  for (let p = 0; p < count; p++) {
    let t = now - 45 * 60_000 + p * 7;
    const run = 100 + p;
    const url = `https://jenkins.example/job/acme/job/monorepo/job/main/${run}/`;
    let node = 2;
    const at = (parent: Span, name: string, attributes: Record<string, string | number | boolean | string[]>): Span =>
      tracer.startSpan(name, { startTime: t, attributes }, trace.setSpan(context.active(), parent));
    const root = tracer.startSpan(
      'BUILD acme/monorepo/main',
      {
        kind: SpanKind.SERVER,
        startTime: t,
        attributes: {
          'ci.pipeline.id': 'acme/monorepo/main',
          'ci.pipeline.name': 'acme » monorepo » main',
          'ci.pipeline.type': 'multibranch',
          'ci.pipeline.run.url': url,
          'ci.pipeline.run.number': run,
          'ci.pipeline.run.cause': ['BranchIndexingCause'],
          'ci.pipeline.parameter.name': ['TARGET'],
          'ci.pipeline.parameter.value': ['all'],
          'ci.pipeline.parameter.sensitive': [false],
          type: 'job',
        },
      },
      context.active(),
    );
    events++;
    const start = at(root, 'Phase: Start', {});
    t += 5;
    start.end(t);
    const phase = at(root, 'Phase: Run', {});
    const agent = at(phase, 'Agent', { 'jenkins.pipeline.step.type': 'node', 'jenkins.pipeline.step.name': 'agent', 'jenkins.pipeline.step.id': String(node++), 'jenkins.pipeline.step.agent.label': 'linux && x64' });
    const alloc = at(agent, 'Agent Allocation', { 'jenkins.pipeline.step.type': 'node', 'jenkins.pipeline.step.name': 'agent.allocate', 'jenkins.pipeline.step.id': String(node++) });
    t += 300;
    alloc.end(t);
    let failed = false;
    for (let s = 0; s < STAGES; s++) {
      const stage = at(agent, `Stage: stage-${s}`, { 'jenkins.pipeline.step.type': 'stage', 'jenkins.pipeline.step.name': `stage-${s}`, 'jenkins.pipeline.step.id': String(node++) });
      events++;
      let stageFailed = false;
      for (let b = 0; b < BRANCHES; b++) {
        const branch = at(stage, `Parallel branch: shard-${b}`, { 'jenkins.pipeline.step.type': 'parallel', 'jenkins.pipeline.step.name': `shard-${b}`, 'jenkins.pipeline.step.id': String(node++) });
        for (let k = 0; k < STEPS; k++) {
          const id = node++;
          const bad = (p * 7 + s * 5 + b * 3 + k) % 41 === 0;
          const sh = at(branch, 'Shell Script', {
            'jenkins.pipeline.step.type': 'sh',
            'jenkins.pipeline.step.name': 'Shell Script',
            'jenkins.pipeline.step.id': String(id),
            'jenkins.pipeline.step.plugin.name': 'workflow-durable-task-step',
            'jenkins.pipeline.step.plugin.version': '1353.v1891a_b_01da_18',
            'jenkins.pipeline.step.result': bad ? 'FAILURE' : 'SUCCESS',
            'ci.pipeline.run.user': 'SYSTEM',
            'host.name': `agent-${b}.example`,
            'jenkins.computer.name': `agent-${b}`,
          });
          events++;
          if (bad) {
            sh.recordException({ name: 'hudson.AbortException', message: 'script returned exit code 1' });
            sh.setStatus({ code: SpanStatusCode.ERROR, message: 'script returned exit code 1' });
            stageFailed = true;
          }
          t += 11;
          sh.end(t);
        }
        branch.end(t);
      }
      stage.setAttribute('jenkins.pipeline.step.result', stageFailed ? 'FAILURE' : 'SUCCESS');
      if (stageFailed) stage.setStatus({ code: SpanStatusCode.ERROR });
      failed ||= stageFailed;
      t += 2;
      stage.end(t);
    }
    agent.end(t);
    phase.end(t);
    const fin = at(root, 'Phase: Finalise', {});
    t += 3;
    fin.end(t);
    root.setAttribute('ci.pipeline.run.result', failed ? 'FAILURE' : 'SUCCESS');
    if (failed) root.setStatus({ code: SpanStatusCode.ERROR });
    root.end(t + 1);
  }
  return { spans: collector.spans, events };
}

/** This exporter on the Jenkins-shaped workload: the sink must count one event per pipeline, stage and step. */
export function jenkinsContender(make: () => SpanExporter, w: VocabWorkload, warmW?: VocabWorkload): Contender {
  let exporter: SpanExporter | undefined;
  return {
    name: 'this exporter, Jenkins-shaped (vocabulary)',
    expected: w.events,
    setup() {
      exporter = make();
    },
    run() {
      return driveExporter(exporter as SpanExporter, w.spans);
    },
    ...(warmW && { warm: () => driveExporter(exporter as SpanExporter, warmW.spans) }),
    async teardown() {
      await exporter?.shutdown();
    },
  };
}
