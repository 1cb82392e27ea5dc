// RFC3339 times (src/mapping/time.ts): the per-second slots, the one-day cache and the table of
// two-digit numbers give exactly what Date's toISOString gives, for any second of years
// 0000–9999 (before 1970 too), in any order of calls (cache hits, misses, day changes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hrTimeToRfc3339, MAX_TIME_SEC, MIN_TIME_SEC } from '../src/mapping/time.js';

const expected = (sec: number, nanos: number): string =>
  `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(Math.floor(nanos / 1e3)).padStart(6, '0')}Z`;

const second = fc.oneof(
  fc.integer({ min: MIN_TIME_SEC, max: MAX_TIME_SEC }),
  // Around now, the epoch and the ends of the range: neighbouring seconds, minutes, days.
  fc.tuple(fc.constantFrom(1_764_633_600, 0, -1, MIN_TIME_SEC, MAX_TIME_SEC - 200_000), fc.integer({ min: 0, max: 200_000 })).map(([base, d]) => base + d),
);

test('hrTimeToRfc3339 equals toISOString with microseconds, any seconds in any order (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(second, fc.integer({ min: 0, max: 999_999_999 })), { minLength: 1, maxLength: 30 }), (times) => {
      for (const [sec, nanos] of times) assert.equal(hrTimeToRfc3339([sec, nanos]), expected(sec, nanos));
      // Again, now that the slots and the day cache hold some of them.
      for (const [sec, nanos] of times.reverse()) assert.equal(hrTimeToRfc3339([sec, nanos]), expected(sec, nanos));
    }),
    { numRuns: 1000, seed: Number(process.env.FC_SEED ?? 7) },
  );
});

test('hrTimeToRfc3339: every second of one day, and out-of-range times throw and leave the caches as they were', () => {
  const day = 1_764_633_600; // 2025-12-02T00:00:00Z
  for (let s = day - 1; s <= day + 86_400; s++) assert.equal(hrTimeToRfc3339([s, 0]), expected(s, 0));
  assert.equal(hrTimeToRfc3339([day + 3723, 5_000]), '2025-12-02T01:02:03.000005Z');
  assert.throws(() => hrTimeToRfc3339([MAX_TIME_SEC + 1, 0]), RangeError);
  assert.throws(() => hrTimeToRfc3339([MIN_TIME_SEC - 1, 0]), RangeError);
  assert.throws(() => hrTimeToRfc3339([day + 0.5, 0]), RangeError);
  assert.equal(hrTimeToRfc3339([day + 3723, 5_000]), '2025-12-02T01:02:03.000005Z');
  assert.equal(hrTimeToRfc3339([MIN_TIME_SEC, 0]), '0000-01-01T00:00:00.000000Z');
  assert.equal(hrTimeToRfc3339([MAX_TIME_SEC, 999_999_999]), '9999-12-31T23:59:59.999999Z');
});

test('hrTimeToRfc3339: seconds that share a slot of the table (256 apart, and across zero) never answer for each other', () => {
  const day = 1_764_633_600;
  // -1 and 255 (and MIN_TIME_SEC's neighbours) fall in the same slot as their kin 256 × k away.
  const bases = [day, day + 17, 0, -1, 255, -257, MIN_TIME_SEC, MAX_TIME_SEC - 1024];
  for (const base of bases) {
    const kin = [base, base + 256, base + 512, base + 256 * 1000, base, base + 256];
    for (let round = 0; round < 2; round++) {
      for (const s of kin) {
        if (s < MIN_TIME_SEC || s > MAX_TIME_SEC) continue;
        assert.equal(hrTimeToRfc3339([s, 1_000]), expected(s, 1_000), `second ${s}`);
      }
    }
  }
  // A second that failed its range check must not have taken a slot.
  assert.throws(() => hrTimeToRfc3339([MAX_TIME_SEC + 256, 0]), RangeError);
  assert.equal(hrTimeToRfc3339([MAX_TIME_SEC, 0]), expected(MAX_TIME_SEC, 0));
});
