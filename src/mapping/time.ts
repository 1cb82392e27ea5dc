// RFC3339 times with microsecond precision. Spans carry nanoseconds; Date keeps milliseconds, so
// the sub-millisecond digits are appended by hand.
import type { HrTime } from '@opentelemetry/api';

export function hrTimeToRfc3339(t: HrTime): string {
  const [sec, nanos] = t;
  const ms = Math.floor(nanos / 1e6);
  const iso = new Date(sec * 1000 + ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const micros = Math.floor((nanos % 1e6) / 1e3);
  return `${iso.slice(0, 23)}${micros < 10 ? '00' : micros < 100 ? '0' : ''}${micros}Z`;
}

export function hrTimeToMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

export function msToRfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
