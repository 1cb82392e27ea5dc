// RFC3339 times with microsecond precision. Spans carry nanoseconds; Date keeps milliseconds, so
// the sub-millisecond digits are appended by hand.
//
// The API's times are RFC3339 date-times: years 0000 to 9999. Past them, toISOString() writes
// "+010000-…" (which the schema rejects) or throws; so every time is bounded before it is
// formatted, and before the cache below is touched (a time that fails must leave it as it was).
import type { HrTime } from '@opentelemetry/api';

/** 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, epoch ms: the years RFC3339 can write. */
export const MIN_TIME_MS = -62_167_219_200_000;
export const MAX_TIME_MS = 253_402_300_799_999;
export const MIN_TIME_SEC = MIN_TIME_MS / 1000;
export const MAX_TIME_SEC = Math.floor(MAX_TIME_MS / 1000);

/** Whether `ms` (epoch) is a time the API can take: finite, years 0000–9999. */
export function inTimeRange(ms: number): boolean {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS; // false for NaN
}

// Spans arrive in end order, so starts and ends each move slowly: format the date and time
// once per second, with two slots so that a start and an end in different seconds do not evict
// each other. Past the slots (a pipeline resolving all its stages, jobs and steps at once goes
// back and forth over many seconds), the time of day comes from a table of two-digit numbers
// and the date from a one-day cache: no Date object and no toISOString per miss.
let secA = NaN;
let prefixA = '';
let secB = NaN;
let prefixB = '';
let lastDay = NaN;
let lastDayPrefix = '';

/** '00' … '59'. */
const TWO_DIGITS: readonly string[] = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

/** `2024-01-02T03:04:05` for epoch second `sec` (an integer within years 0000–9999). */
function formatSecond(sec: number): string {
  const day = Math.floor(sec / 86_400);
  const inDay = sec - day * 86_400; // 0 … 86,399, also before 1970
  if (day !== lastDay) {
    lastDayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11); // 2024-01-02T
    lastDay = day;
  }
  const h = Math.floor(inDay / 3600);
  const m = Math.floor((inDay - h * 3600) / 60);
  return `${lastDayPrefix}${TWO_DIGITS[h]!}:${TWO_DIGITS[m]!}:${TWO_DIGITS[inDay - h * 3600 - m * 60]!}`;
}

function prefixOf(sec: number): string {
  if (sec === secA) return prefixA;
  if (sec === secB) return prefixB;
  if (!Number.isInteger(sec) || sec < MIN_TIME_SEC || sec > MAX_TIME_SEC) {
    throw new RangeError(`time out of range: ${sec} s (RFC3339 years 0000-9999)`);
  }
  // Formatted before the slots move: were it to throw, the cache would stay as it was.
  const prefix = formatSecond(sec);
  secB = secA;
  prefixB = prefixA;
  secA = sec;
  prefixA = prefix;
  return prefix;
}

/** Throws a RangeError for a time outside years 0000–9999 (span-shape.ts refuses those first). */
export function hrTimeToRfc3339(t: HrTime): string {
  const nanos = t[1];
  const cachedPrefix = prefixOf(t[0]);
  const micros = Math.floor(nanos / 1e3);
  if (!(micros >= 0 && micros < 1e6)) throw new RangeError(`nanoseconds out of range: ${nanos}`);
  // 1e6 + micros has 7 digits; dropping the first leaves the 6 zero-padded microsecond digits.
  return `${cachedPrefix}.${String(1e6 + micros).slice(1)}Z`;
}

export function hrTimeToMs(t: HrTime): number {
  return t[0] * 1000 + t[1] / 1e6;
}

/** Throws a RangeError for a time outside years 0000–9999 (attributes.ts refuses those first). */
export function msToRfc3339(ms: number): string {
  if (!inTimeRange(ms)) throw new RangeError(`time out of range: ${ms} ms (RFC3339 years 0000-9999)`);
  return new Date(ms).toISOString();
}
