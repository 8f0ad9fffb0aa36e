// media/tape-ring.ts: tapes through shared memory, in order, across the wrap, refusing what it
// cannot carry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TapeRing } from '../../../media/tape-ring.js';

const readAll = (r: TapeRing, until?: number): unknown[][] => {
  const out: unknown[][] = [];
  if (until === undefined) r.read((t) => out.push(t)); else r.read((t) => out.push(t), until);
  return out;
};

test('tapes of numbers, strings and nulls come out as they went in, in order', () => {
  const ring = TapeRing.create(64);
  assert.ok(ring.empty);
  const tapes = [[3, 1, 'fe80::1%eth0', null, -0, 1.5, 2 ** 40], [], ['é→日本'], [NaN, Infinity, -7]];
  for (const t of tapes) assert.ok(ring.write(t));
  assert.ok(!ring.empty);
  const out = readAll(ring);
  assert.deepEqual(out, tapes);
  assert.ok(Object.is(out[0]![4], -0));
  assert.ok(ring.empty);
  assert.equal(ring.used, 0);
});

test('a tape with an object in it, or one that does not fit, is refused and nothing is written', () => {
  const ring = TapeRing.create(16);
  assert.equal(ring.write([1, { op: 'cert' }]), false);
  assert.equal(ring.write([1, undefined]), false);
  assert.ok(ring.empty, 'a refused tape writes nothing');
  assert.ok(ring.write([1, 2, 3, 4, 5, 6, 7])); // 15 slots
  assert.equal(ring.write([1]), false, 'no room for 3 more slots');
  assert.deepEqual(readAll(ring), [[1, 2, 3, 4, 5, 6, 7]]);
  assert.ok(ring.write([1]), 'room again once read');
});

test('reading stops at a position: what was written after it stays for later', () => {
  const ring = TapeRing.create(64);
  ring.write([1]);
  const mark = ring.writePos;
  ring.write([2]);
  assert.deepEqual(readAll(ring, mark), [[1]]);
  assert.deepEqual(readAll(ring, mark), [], 'nothing more up to the same position');
  assert.deepEqual(readAll(ring), [[2]]);
});

test('positions wrap around the ring and past 2^31 without losing a record', () => {
  const ring = TapeRing.create(32);
  // Start near the int32 limit, as after ~50 minutes of NG load.
  const ctrl = new Int32Array(ring.init.ctrl);
  ctrl[0] = ctrl[1] = 2 ** 31 - 20;
  for (let k = 0; k < 200; k++) {
    const tape = [k, `s${k}`, null];
    assert.ok(ring.write(tape), `write ${k}`);
    if (k % 3 === 2) ring.write([k, k]);
    const out = readAll(ring);
    assert.deepEqual(out[0], tape, `read ${k}`);
    assert.equal(out.length, k % 3 === 2 ? 2 : 1);
  }
  assert.ok(ctrl[0]! < 0, 'the write position wrapped past 2^31');
  assert.ok(ring.empty);
});

test('the reader sees the tapes through its own view of the shared memory', () => {
  const writer = TapeRing.create(64);
  const reader = new TapeRing(writer.init);
  writer.write(['127.0.0.1', 5004]);
  assert.ok(!reader.empty);
  assert.deepEqual(readAll(reader), [['127.0.0.1', 5004]]);
  assert.ok(writer.empty, 'the read position is shared too');
});
