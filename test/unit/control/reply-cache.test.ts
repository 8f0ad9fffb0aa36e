import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyCache } from '../../../control/reply-cache.js';

test('a reply is found by source and whole message, and not otherwise', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const msg = Buffer.from('k1 d7:command4:pinge');
  const key = ReplyCache.key('127.0.0.1:5000', msg);
  c.pending(key, Promise.resolve(Buffer.from('k1 d6:result4:ponge')));
  await Promise.resolve();
  assert.equal(ReplyCache.key('127.0.0.1:5000', Buffer.from(msg)), key, 'same bytes, same key');
  assert.deepEqual(await c.get(key), Buffer.from('k1 d6:result4:ponge'));
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5001', msg)), undefined, 'another source');
  assert.equal(c.get(ReplyCache.key('127.0.0.1:5000', Buffer.from('k1 d7:command4:liste'))), undefined, 'cookie reused for another body');
});

test('a duplicate arriving while the first is in progress shares its reply', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  let finish!: (b: Buffer) => void;
  const first = new Promise<Buffer>((r) => { finish = r; });
  c.pending('k', first);
  const dup = c.get('k');
  assert.ok(dup instanceof Promise, 'the in-flight promise is handed out');
  finish(Buffer.from('reply'));
  assert.deepEqual(await dup, Buffer.from('reply'));
  assert.ok(Buffer.isBuffer(c.get('k')), 'settled entries hold the bytes');
});

test('entries live for two generations, then go', async (t) => {
  const c = new ReplyCache(60_000);
  t.after(() => c.close());
  c.pending('k', Promise.resolve(Buffer.from('x')));
  await Promise.resolve();
  c.rotate();
  assert.ok(c.get('k'), 'still there after one rotation');
  c.rotate();
  assert.equal(c.get('k'), undefined);
  assert.equal(c.size, 0);
});

test('a rejected command is not cached, so a retransmission runs it again', async (t) => {
  const c = new ReplyCache();
  t.after(() => c.close());
  const p = Promise.reject(new Error('boom'));
  c.pending('k', p);
  await p.catch(() => undefined);
  await Promise.resolve();
  assert.equal(c.get('k'), undefined);
});

test('the byte budget drops old generations instead of growing', async (t) => {
  const c = new ReplyCache(60_000, 1000);
  t.after(() => c.close());
  for (let i = 0; i < 50; i++) {
    c.pending(`k${i}`, Promise.resolve(Buffer.alloc(100)));
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(c.size < 50, `size ${c.size}`);
  assert.ok(c.get('k49'), 'the newest survive');
});
