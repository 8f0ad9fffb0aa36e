import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyCache } from '../../../control/reply-cache.js';

const keyOf = (i: number) => ReplyCache.key('127.0.0.1:5000', Buffer.from(`k${i} d7:command5:offere`));
const K = keyOf(1);

test('a reply is found by source and whole message, and not otherwise', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const msg = Buffer.from('k1 d7:command4:pinge');
  const key = ReplyCache.key('127.0.0.1:5000', msg);
  c.pending(key, Promise.resolve(Buffer.from('k1 d6:result4:ponge')));
  await Promise.resolve();
  assert.deepEqual(ReplyCache.key('127.0.0.1:5000', Buffer.from(msg)), key, 'same bytes, same key');
  assert.deepEqual(await c.get(key), Buffer.from('k1 d6:result4:ponge'));
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5001', msg)), undefined, 'another source');
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5000', Buffer.from('k1 d7:command4:liste'))), undefined, 'cookie reused for another body');
});

test('a duplicate arriving while the first is in progress shares its reply', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  let finish!: (b: Buffer) => void;
  const first = new Promise<Buffer>((r) => { finish = r; });
  c.pending(K, first);
  const dup = c.get(K);
  assert.ok(dup instanceof Promise, 'the in-flight promise is handed out');
  finish(Buffer.from('reply'));
  assert.deepEqual(await dup, Buffer.from('reply'));
  assert.ok(Buffer.isBuffer(c.get(K)), 'settled entries hold the bytes');
});

test('entries live for two generations, then go', async (t) => {
  const c = new ReplyCache({ ttlMs: 60_000 });
  t.after(() => c.close());
  c.pending(K, Promise.resolve(Buffer.from('x')));
  await Promise.resolve();
  c.rotate();
  assert.ok(c.get(K), 'still there after one rotation');
  c.rotate();
  assert.equal(c.get(K), undefined);
  assert.equal(c.size, 0);
});

test('a rejected command is not cached, so a retransmission runs it again', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const p = Promise.reject(new Error('boom'));
  c.pending(K, p);
  await p.catch(() => undefined);
  await Promise.resolve();
  assert.equal(c.get(K), undefined);
});

test('the byte budget drops old generations instead of growing', async (t) => {
  const c = new ReplyCache({ maxBytes: 1000 });
  t.after(() => c.close());
  for (let i = 0; i < 50; i++) {
    c.pending(keyOf(i), Promise.resolve(Buffer.alloc(100, i)));
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(c.size < 50, `size ${c.size}`);
  assert.deepEqual(c.get(keyOf(49)), Buffer.alloc(100, 49), 'the newest survive');
});

test('thousands of replies, small and big, come back byte for byte from the slabs', async (t) => {
  const c = new ReplyCache({ maxBytes: 1 << 30 });
  t.after(() => c.close());
  const n = 5000;
  const body = (i: number): Buffer => (i % 1000 === 7 ? Buffer.alloc(300_000, i & 0xff) : Buffer.from(`k${i} d6:result2:ok3:sdp${String(i).length + 4}:v=0 ${i}e`));
  for (let i = 0; i < n; i++) {
    const b = body(i);
    c.pending(keyOf(i), Promise.resolve(b));
    await Promise.resolve(); await Promise.resolve();
    b.fill(0); // the caller's buffer is its own again: the cache holds a copy
  }
  assert.equal(c.size, n);
  for (let i = 0; i < n; i++) assert.deepEqual(c.get(keyOf(i)), body(i), `reply ${i}`);
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5000', Buffer.from(`k${n} d7:command5:offere`))), undefined);
});

test('a flood of sources resets the cache instead of growing it', async (t) => {
  const c = new ReplyCache({ maxBytes: 1 << 30, maxSources: 10 });
  t.after(() => c.close());
  for (let i = 0; i < 25; i++) {
    c.pending(ReplyCache.key(`10.0.0.${i}:5060`, Buffer.from('k1 d7:command4:pinge')), Promise.resolve(Buffer.from('r')));
    await Promise.resolve(); await Promise.resolve();
  }
  assert.ok(c.size <= 10, `size ${c.size}`);
  assert.ok(c.get(ReplyCache.key('10.0.0.24:5060', Buffer.from('k1 d7:command4:pinge'))), 'the newest source is kept');
});

test('a cookie reused for a body that differs only past the hashed start is not answered from the cache', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const head = 'k9 d7:command5:offer7:call-id40:' + 'c'.repeat(40);
  const a = Buffer.from(`${head}3:sdp3:abce`), b = Buffer.from(`${head}3:sdp3:abde`);
  assert.equal(a.length, b.length);
  c.pending(ReplyCache.key('127.0.0.1:5000', a), Promise.resolve(Buffer.from('k9 first')));
  await Promise.resolve(); await Promise.resolve();
  assert.deepEqual(c.get(ReplyCache.key('127.0.0.1:5000', Buffer.from(a))), Buffer.from('k9 first'));
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5000', b)), undefined);
});

test('slabs of dropped generations are used again, and a late reply of a dropped one writes nothing', async (t) => {
  const c = new ReplyCache({ maxBytes: 1 << 30 });
  t.after(() => c.close());
  let lateDone!: (b: Buffer) => void;
  c.pending(keyOf(-1), new Promise<Buffer>((r) => { lateDone = r; }));
  const reply = (i: number): Buffer => Buffer.alloc(200_000, i & 0xff);
  for (let i = 0; i < 200; i++) {
    if (i % 10 === 0) c.rotate();
    c.pending(keyOf(i), Promise.resolve(reply(i)));
    await Promise.resolve(); await Promise.resolve();
  }
  // 40 MB of replies in generations of ~2 MB: without reuse ~40 slabs, with it those of ~4 generations.
  assert.ok(c.slabsMade <= 10, `slabs made ${c.slabsMade}`);
  lateDone(Buffer.alloc(200_000, 0xee)); // its generation was dropped long ago; its slab is someone else's
  await Promise.resolve(); await Promise.resolve();
  assert.equal(c.get(keyOf(-1)), undefined);
  for (let i = 190; i < 200; i++) assert.deepEqual(c.get(keyOf(i)), reply(i), `reply ${i}`);
});

test('requests alike in source, cookie, start and length but not body replace each other instead of piling up', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const msg = (i: number): Buffer => Buffer.from(`k7 d7:command4:ping7:call-id40:${'c'.repeat(40)}4:note6:${String(i).padStart(6, '0')}e`);
  const failing = Promise.reject(new Error('boom'));
  c.pending(ReplyCache.key('127.0.0.1:5000', msg(-1).subarray(0)), failing); // a failed one first
  await failing.catch(() => undefined);
  for (let i = 0; i < 3000; i++) {
    c.pending(ReplyCache.key('127.0.0.1:5000', msg(i)), Promise.resolve(Buffer.from(`r${i}`)));
    await Promise.resolve(); await Promise.resolve();
  }
  // Each took the slot of the one before: one entry, and no chain of 3,000 to walk and compare.
  assert.equal(c.size, 1);
  assert.deepEqual(c.get(ReplyCache.key('127.0.0.1:5000', msg(2999))), Buffer.from('r2999'));
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5000', msg(5))), undefined, 'a replaced request runs again');
  c.rotate();
  assert.deepEqual(c.get(ReplyCache.key('127.0.0.1:5000', msg(2999))), Buffer.from('r2999'), 'and from the previous generation after a rotation');
});

test('with a reserve, slabs come from it: none is allocated while it lasts, and those let go return to it', async (t) => {
  const released: Buffer[] = [];
  // A stand-in for the kernel giving the pages back: the bytes are gone (the cache must not read them again).
  const release = (s: Buffer): void => { released.push(s); s.fill(0xee); };
  const c = new ReplyCache({ maxBytes: 1 << 30, reserveBytes: 12 * (1 << 20), release });
  t.after(() => c.close());
  const reply = (i: number): Buffer => Buffer.alloc(200_000, i & 0xff);
  const burst = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) {
      if (i % 10 === 0) c.rotate();
      c.pending(keyOf(i), Promise.resolve(reply(i)));
      await Promise.resolve(); await Promise.resolve();
    }
  };
  // 40 MB of replies in generations of ~2 MB: the pool never holds more than ~4 generations.
  await burst(0, 200);
  assert.equal(c.slabsMade, 0, 'every slab came from the reserve or was used again');
  for (let i = 190; i < 200; i++) assert.deepEqual(c.get(keyOf(i)), reply(i), `reply ${i}`);
  assert.equal(released.length, 0, 'a steady load takes every ready slab');
  const f = c.figures();
  assert.equal(f.reserveBytes, 12 * (1 << 20));
  assert.equal(f.entries, 20, 'two generations of ten');
  assert.ok(f.bytes >= 20 * 200_000 && f.bytes < 21 * 200_000, `bytes ${f.bytes}`);
  // The burst ends: rotations without traffic let the pool go, back to the reserve, pages released.
  for (let r = 0; r < 4; r++) c.rotate();
  assert.ok(released.length >= 6, `released ${released.length}`);
  assert.ok(released.every((s) => s.length === 1 << 20), 'whole slabs');
  // The next burst fills released slabs again, byte for byte, still without allocating.
  await burst(200, 400);
  assert.equal(c.slabsMade, 0);
  for (let i = 390; i < 400; i++) assert.deepEqual(c.get(keyOf(i)), reply(i), `reply ${i}`);
});

test('a reserve too small for the load is topped up with slabs of their own, which are never released', async (t) => {
  const released: Buffer[] = [];
  const c = new ReplyCache({ maxBytes: 1 << 30, reserveBytes: 2 * (1 << 20), release: (s) => released.push(s) });
  t.after(() => c.close());
  for (let i = 0; i < 60; i++) {
    if (i % 20 === 0) c.rotate();
    c.pending(keyOf(i), Promise.resolve(Buffer.alloc(200_000, i)));
    await Promise.resolve(); await Promise.resolve();
  }
  assert.ok(c.slabsMade > 0, 'allocated beyond the reserve');
  for (let r = 0; r < 4; r++) c.rotate();
  assert.equal(released.length, 2, 'only the reserve\'s two slabs are released (the others go to the collector)');
  assert.ok(released.every((s) => s.buffer === released[0]!.buffer), 'one block');
});

test('a reserve the allocator refuses leaves slabs allocated as needed', async (t) => {
  // Past buffer.constants.MAX_LENGTH: allocation throws, as a strict overcommit policy would make it.
  const c = new ReplyCache({ maxBytes: 1 << 30, reserveBytes: 2 ** 53 });
  t.after(() => c.close());
  c.pending(K, Promise.resolve(Buffer.from('k1 d6:result2:oke')));
  await Promise.resolve(); await Promise.resolve();
  assert.deepEqual(c.get(K), Buffer.from('k1 d6:result2:oke'));
  assert.equal(c.slabsMade, 1);
  assert.equal(c.figures().reserveBytes, 0);
});

test('a flood of sources returns the reserve\'s slabs through the pool instead of losing them', async (t) => {
  const released = new Set<number>();
  const c = new ReplyCache({ maxBytes: 1 << 30, maxSources: 4, reserveBytes: 4 * (1 << 20), release: (s) => released.add(s.byteOffset) });
  t.after(() => c.close());
  for (let i = 0; i < 40; i++) {
    c.pending(ReplyCache.key(`10.0.0.${i}:5060`, Buffer.from(`k${i} d7:command4:pinge`)), Promise.resolve(Buffer.alloc(300_000, i)));
    await Promise.resolve(); await Promise.resolve();
  }
  assert.ok(c.size <= 4, `size ${c.size}`);
  // Ten resets dropped generations holding reserve slabs; they wait a rotation (a reply from them may
  // still be on its way out), then come back to the reserve like any slab let go.
  for (let r = 0; r < 3; r++) c.rotate();
  assert.equal(released.size, 4, 'all four reserve slabs came back');
});
