import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stripFeedback, sdesPair, sameSdes } from '../../../media/transform.js';

function pkt(pt: number, words: number, fmt = 1): Buffer {
  const b = Buffer.alloc(4 * (words + 1), 0x11);
  b[0] = 0x80 | fmt; b[1] = pt; b.writeUInt16BE(words, 2);
  return b;
}

test('stripFeedback: RR+PLI+SDES keeps RR and SDES; feedback only → null; none → same buffer', () => {
  const rr = pkt(201, 1), pli = pkt(206, 2), nack = pkt(205, 3), sdes = pkt(202, 2);
  const out = stripFeedback(Buffer.concat([rr, pli, sdes, nack]));
  assert.deepEqual(out, Buffer.concat([rr, sdes]));
  assert.equal(stripFeedback(Buffer.concat([pli, nack])), null);
  const plain = Buffer.concat([rr, sdes]);
  assert.equal(stripFeedback(plain), plain);
});

test('stripFeedback: malformed lengths are dropped', () => {
  const rr = pkt(201, 1);
  rr.writeUInt16BE(9, 2);
  assert.equal(stripFeedback(rr), null);
  assert.equal(stripFeedback(Buffer.concat([pkt(201, 1), Buffer.alloc(2)])), null);
});

test('sdesPair: usable keys give contexts, bad ones are flagged; sameSdes compares keys and flags', () => {
  const k = { suite: 'AES_CM_128_HMAC_SHA1_80', key: Buffer.alloc(16, 1).toString('base64'), salt: Buffer.alloc(14, 2).toString('base64') };
  const c = { sdes: { rx: k, tx: k }, dtls: null };
  assert.ok(sdesPair(c).pair);
  assert.deepEqual(sdesPair({ sdes: { rx: { ...k, key: 'AA==' }, tx: k }, dtls: null }), { pair: null, invalid: true });
  assert.deepEqual(sdesPair(null), { pair: null, invalid: false });
  assert.ok(sameSdes(c, { sdes: { rx: { ...k }, tx: { ...k } }, dtls: null }));
  assert.ok(!sameSdes(c, { sdes: { rx: k, tx: k, unencryptedSrtp: true }, dtls: null }));
});
