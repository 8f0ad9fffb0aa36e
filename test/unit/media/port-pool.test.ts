import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PortPool } from '../../../media/port-pool.js';

function drain(pool: PortPool): number[] {
  const out: number[] = [];
  for (let p = pool.take(); p !== null; p = pool.take()) out.push(p);
  return out;
}

test('hands out every even port whose odd neighbour is in the range, each once', () => {
  const pool = new PortPool(30001, 30010); // 30002..30009 usable: 30010 has no 30011
  assert.equal(pool.total, 4);
  assert.equal(pool.available, 4);
  const got = drain(pool);
  assert.deepEqual([...got].sort(), [30002, 30004, 30006, 30008]);
  assert.equal(pool.available, 0);
  assert.equal(pool.take(), null, 'empty pool says so, it does not wrap or throw');
});

test('a range too small for one pair is empty', () => {
  assert.equal(new PortPool(30000, 30000).total, 0);
  assert.equal(new PortPool(30001, 30002).total, 0);
  assert.equal(new PortPool(30000, 30001).take(), 30000);
});

test('released ports come back, last in line; releasing a free or foreign port is a no-op', () => {
  const pool = new PortPool(40000, 40007);
  const [a, b, c, d] = drain(pool) as [number, number, number, number];
  pool.release(b);
  pool.release(b); // twice: still one entry
  pool.release(41000); // never ours
  pool.release(a + 1); // odd: never handed out
  assert.equal(pool.available, 1);
  pool.release(d);
  assert.equal(pool.take(), b, 'FIFO: the port freed first is reused first');
  assert.equal(pool.take(), d);
  assert.equal(pool.take(), null);
  void c;
});

test('taken ports are never handed out twice while in use', () => {
  const pool = new PortPool(20000, 20099);
  const inUse = new Set<number>();
  for (let i = 0; i < 500; i++) {
    if (i % 3 === 2 && inUse.size) {
      const p = [...inUse][i % inUse.size]!;
      inUse.delete(p);
      pool.release(p);
    } else {
      const p = pool.take();
      if (p === null) { assert.equal(inUse.size, pool.total); continue; }
      assert.ok(!inUse.has(p), `port ${p} handed out twice`);
      assert.equal(p % 2, 0);
      inUse.add(p);
    }
    assert.equal(pool.available + inUse.size, pool.total);
  }
});
