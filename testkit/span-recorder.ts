// A span processor that keeps every ended span, in end order: the order a BatchSpanProcessor
// hands them to an exporter. Tests and the benchmark build real SDK spans with it.
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export class SpanRecorder implements SpanProcessor {
  readonly spans: ReadableSpan[] = [];
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.spans.push(span);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
