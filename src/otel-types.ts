// The SDK's interfaces this package implements, as local structural types. Importing them from
// `@opentelemetry/sdk-trace-base` (2.x) or `@opentelemetry/sdk-trace` (3.x) would tie the package
// to one SDK line and pull a second SDK into the other line's users' trees; the shapes below are
// what both lines agree on. The result codes are the SDK's two numbers.
import { createContextKey, type Context } from '@opentelemetry/api';
import type { SpanData } from './mapping/transform.js';

/** `ExportResultCode` of `@opentelemetry/core`: SUCCESS = 0, FAILED = 1. */
export const ExportResultCode = { SUCCESS: 0, FAILED: 1 } as const;
export type ExportResultCode = (typeof ExportResultCode)[keyof typeof ExportResultCode];

export interface ExportResult {
  code: ExportResultCode;
  error?: Error;
}

/** What the exporter reads of an SDK `ReadableSpan` (1.x, 2.x and 3.x shapes alike). */
export type ReadableSpanLike = SpanData;

/** The SDK's `SpanExporter`. */
export interface SpanExporterLike {
  export(spans: ReadableSpanLike[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/**
 * The SDK's `SpanProcessor`, as 2.x (sdk-trace-base) and 3.x (sdk-trace) call it:
 * - `onStart(span, parentContext)` from the span's constructor, for recording (sampled) spans
 *   only, before the tracer returns the span;
 * - `onEnding(span)` (optional, `@experimental` in both lines; 3.x and 2.x since late 2025) from
 *   `span.end()`, after the end time is set but while the span is still writable;
 * - `onEnd(span)` right after, with the span marked ended (read-only from then on);
 * - `forceFlush()` from the provider's forceFlush, `shutdown()` from its shutdown.
 * A span that is never ended never reaches onEnding/onEnd.
 */
export interface SpanProcessorLike<S = unknown, R = ReadableSpanLike> {
  onStart(span: S, parentContext: Context): void;
  onEnding?(span: S): void;
  onEnd(span: R): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The context key of `suppressTracing()` in `@opentelemetry/core` (both lines): context keys are
 * `Symbol.for(description)`, so this is the same key, without a runtime dependency on core.
 */
export const SUPPRESS_TRACING_KEY = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

export function suppressTracing(context: Context): Context {
  return context.setValue(SUPPRESS_TRACING_KEY, true);
}
