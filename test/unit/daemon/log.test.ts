// The logger's timestamp: pino's isoTime text, computed once per millisecond.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { isoTime } from '../../../daemon/log.js';

test('isoTime writes what pino.stdTimeFunctions.isoTime writes, also when the clock moves back', (t) => {
  let now = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
  t.mock.method(Date, 'now', () => now);
  for (const step of [0, 0, 1, 999, -5000, 0, 86_400_000]) {
    now += step;
    assert.equal(isoTime(), pino.stdTimeFunctions.isoTime());
  }
  assert.equal(isoTime(), ',"time":"2026-01-03T03:04:01.678Z"');
});
