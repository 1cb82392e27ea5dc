// The local intake, shipped: `datadog-ci-pipeline-exporter intake` and the
// `datadog-ci-pipeline-exporter/intake` entry. A stand-in for Datadog's pipeline endpoint that
// validates like Datadog and draws what it received; for trying the exporter, demos and tests.
export {
  startIntakeServer,
  defaultAnswerFor,
  INTAKE_PATH,
  SNAPSHOT_PATH,
  DEFAULT_INTAKE_PORT,
  DEFAULT_MAX_BODY_BYTES,
  type IntakeServer,
  type IntakeServerOptions,
  type IntakeHooks,
  type ReceivedRequest,
  type Answer,
} from './server.js';
export { validateBody, schemaProblems, schemaValidator, type BodyCheck, type SchemaValidator } from './validate.js';
export { checkProseRules, eventsOf, MAX_EVENTS_PER_REQUEST, type ProseProblems } from './prose-rules.js';
export { formatProblem, toApiError, fieldOf, type Problem, type ApiError } from './problems.js';
export { PipelineStore, DEFAULT_STORE_LIMITS, type StoreLimits, type Snapshot, type StoredEvent, type StoredPipeline } from './store.js';
