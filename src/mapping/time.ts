// RFC3339 times with microsecond precision. Spans carry nanoseconds; Date keeps milliseconds, so
// the sub-millisecond digits are appended by hand.
import type { HrTime } from '@opentelemetry/api';

// Spans arrive in end order, so starts and ends each move slowly: format the date and time
// once per second, with two slots so that a start and an end in different seconds do not evict
// each other.
let secA = NaN;
let prefixA = '';
let secB = NaN;
let prefixB = '';

function prefixOf(sec: number): string {
  if (sec === secA) return prefixA;
  if (sec === secB) return prefixB;
  secB = secA;
  prefixB = prefixA;
  secA = sec;
  prefixA = new Date(sec * 1000).toISOString().slice(0, 19); // 2024-01-02T03:04:05
  return prefixA;
}

export function hrTimeToRfc3339(t: HrTime): string {
  const nanos = t[1];
  const cachedPrefix = prefixOf(t[0]);
  const micros = Math.floor(nanos / 1e3);
  // 1e6 + micros has 7 digits; dropping the first leaves the 6 zero-padded microsecond digits.
  return `${cachedPrefix}.${String(1e6 + micros).slice(1)}Z`;
}

export function hrTimeToMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

export function msToRfc3339(ms: number): string {
  return new Date(ms).toISOString();
}
