// Event IDs derived from OpenTelemetry IDs, so that a retried or re-exported span always gets the
// same ID (Datadog keeps one record) and so that an ID leads back to its span.
//
// - A pipeline that is the root of its trace: unique_id = the 128-bit trace ID as a UUID.
// - Every other labelled span (stage, job, step, and a pipeline nested under another span):
//   the first 64 bits of the trace ID followed by the 64-bit span ID, in UUID form:
//     tttttttt-tttt-tttt-ssss-ssssssssssss
//   Span IDs are unique within a trace, so these are unique within a pipeline execution, as
//   the spec asks; the trace-ID prefix keeps them apart across pipelines. The last 16 hex digits
//   are the span ID, which is what to search for in a tracing backend.

export function traceIdToUuid(traceId: string): string {
  return `${traceId.slice(0, 8)}-${traceId.slice(8, 12)}-${traceId.slice(12, 16)}-${traceId.slice(16, 20)}-${traceId.slice(20, 32)}`;
}

// Spans of one trace come together: its UUID prefix is built once, not per span.
let prefixTrace = '';
let prefix = '';

export function spanIdToUuid(traceId: string, spanId: string): string {
  if (traceId !== prefixTrace) {
    prefixTrace = traceId;
    prefix = `${traceId.slice(0, 8)}-${traceId.slice(8, 12)}-${traceId.slice(12, 16)}-`;
  }
  return `${prefix}${spanId.slice(0, 4)}-${spanId.slice(4, 16)}`;
}
