// SocketPark (media/udp.ts): the policy of freed ports' sockets kept bound, on an injected clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SocketPark } from '../../../media/udp.js';

test('take returns what was parked under the key, once', () => {
  const p = new SocketPark<string>(1000);
  const out: string[] = [];
  p.park('4000 0 127.0.0.1', 'a', 0, out);
  assert.deepEqual(out, []);
  assert.equal(p.size, 1);
  assert.ok(p.has('4000 0 127.0.0.1'));
  assert.equal(p.take('4002 0 127.0.0.1'), undefined);
  assert.equal(p.take('4000 0 127.0.0.1'), 'a');
  assert.equal(p.take('4000 0 127.0.0.1'), undefined);
  assert.equal(p.size, 0);
});

test('parking under a key already parked hands the older item out to be closed', () => {
  const p = new SocketPark<string>(1000);
  const out: string[] = [];
  p.park('k', 'old', 0, out);
  p.park('k', 'new', 5, out);
  assert.deepEqual(out, ['old']);
  assert.equal(p.take('k'), 'new');
});

test('expire hands out those parked ms or longer ago, oldest first, and keeps the rest', () => {
  const p = new SocketPark<string>(1000);
  const out: string[] = [];
  p.park('a', 'a', 0, out);
  p.park('b', 'b', 400, out);
  p.park('c', 'c', 800, out);
  p.park('a', 'a2', 900, out); // parked again: its time starts over
  assert.deepEqual(out, ['a']);
  out.length = 0;
  p.expire(1399, out);
  assert.deepEqual(out, []);
  p.expire(1400, out);
  assert.deepEqual(out, ['b']);
  p.expire(1900, out);
  assert.deepEqual(out, ['b', 'c', 'a2']);
  assert.equal(p.size, 0);
});

test('evict hands out the n oldest; n at or past the size empties it', () => {
  const p = new SocketPark<number>(1000);
  const out: number[] = [];
  for (let i = 0; i < 5; i++) p.park(`k${i}`, i, i, out);
  p.evict(2, out);
  assert.deepEqual(out, [0, 1]);
  p.evict(0, out);
  assert.deepEqual(out, [0, 1]);
  p.evict(99, out);
  assert.deepEqual(out, [0, 1, 2, 3, 4]);
  assert.equal(p.size, 0);
});
