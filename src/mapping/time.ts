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

// A second's `2024-01-02T03:04:05` is formatted once and kept in a small direct-mapped table
// (slot = second mod 256): spans arrive in end order, so starts and ends each move slowly, and a
// pipeline's arrival, which resolves all its stages, jobs and steps at once, goes back and forth
// over the seconds it lasted, each of which keeps its own slot. A miss builds the time of day from
// a table of two-digit numbers and the date from a one-day cache: no Date and no toISOString.
const SLOTS = 256;
const slotSec = new Float64Array(SLOTS).fill(NaN);
const slotPrefix: string[] = new Array<string>(SLOTS).fill('');
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
  // `& 255` keeps the low 8 bits of the integer (ToInt32 wraps modulo 2^32, which keeps them,
  // negative seconds included). A NaN, fraction or out-of-range second never equals a slot's
  // (slots hold only seconds that passed the check below), so it reaches the check.
  const slot = sec & (SLOTS - 1);
  if (slotSec[slot] === sec) return slotPrefix[slot]!;
  if (!Number.isInteger(sec) || sec < MIN_TIME_SEC || sec > MAX_TIME_SEC) {
    throw new RangeError(`time out of range: ${sec} s (RFC3339 years 0000-9999)`);
  }
  // Formatted before the slot changes: were it to throw, the table would stay as it was.
  const prefix = formatSecond(sec);
  slotSec[slot] = sec;
  slotPrefix[slot] = prefix;
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
