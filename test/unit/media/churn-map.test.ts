import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChurnMap } from '../../../media/churn-map.js';

test('keeps, replaces and deletes like a Map, counting what it holds', () => {
  const m = new ChurnMap<string, number>();
  assert.equal(m.size, 0);
  assert.equal(m.set('a', 1), m);
  m.set('b', 2).set('a', 3);
  assert.equal(m.size, 2);
  assert.equal(m.get('a'), 3);
  assert.equal(m.has('b'), true);
  assert.equal(m.delete('b'), true);
  assert.equal(m.delete('b'), false);
  assert.equal(m.has('b'), false);
  assert.equal(m.get('b'), undefined);
  assert.equal(m.size, 1);
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.has('a'), false);
});

test('a value of undefined is held, and keys that are Object.prototype names are plain keys', () => {
  const m = new ChurnMap<string, unknown>();
  m.set('u', undefined);
  assert.equal(m.has('u'), true);
  assert.equal(m.size, 1);
  for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    assert.equal(m.has(k), false, k);
    m.set(k, k.length);
    assert.equal(m.get(k), k.length);
  }
  assert.equal(m.size, 5);
  assert.deepEqual([...m.keys()].sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString', 'u']);
  assert.equal(m.delete('__proto__'), true);
  assert.equal(m.has('__proto__'), false);
  assert.equal(m.size, 4);
});

test('numeric keys come back as numbers; string keys that look numeric stay strings', () => {
  const n = new ChurnMap<number, string>(true);
  n.set(7, 'x').set(-1, 'neg').set(1e9, 'big');
  assert.deepEqual(new Set(n.keys()), new Set([7, -1, 1e9]));
  assert.deepEqual(new Map(n.entries()), new Map([[7, 'x'], [-1, 'neg'], [1e9, 'big']]));
  const s = new ChurnMap<string, number>();
  s.set('12', 1).set('c-1', 2);
  assert.deepEqual(new Set(s.keys()), new Set(['12', 'c-1']));
  assert.deepEqual(new Set(s.values()), new Set([1, 2]));
  assert.deepEqual(new Map(s), new Map([['12', 1], ['c-1', 2]]));
});

test('churn: many keys through, a few at a time, leaves exactly the live ones', () => {
  const m = new ChurnMap<number, { id: number }>(true);
  const live: number[] = [];
  for (let i = 1; i <= 20000; i++) {
    m.set(i, { id: i });
    live.push(i);
    if (live.length > 16) assert.equal(m.delete(live.shift()!), true);
  }
  assert.equal(m.size, 16);
  assert.deepEqual([...m.keys()].sort((a, b) => a - b), live);
  for (const [k, v] of m) assert.equal(v.id, k);
  // Deleting while iterating (as callers that end every call do) visits each live entry once.
  let seen = 0;
  for (const k of m.keys()) { m.delete(k); seen++; }
  assert.equal(seen, 16);
  assert.equal(m.size, 0);
});
