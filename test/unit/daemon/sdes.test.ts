import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatCrypto, generateCrypto, parseCrypto, SDES_OFFER_ORDER, sdesAnswer, sdesOffer, sdesPolicy,
} from '../../../daemon/session/sdes.js';
import { createSrtpContext } from '../../../media/srtp/context.js';
import { srtpSuite } from '../../../media/srtp/suites.js';

// Lines captured from rtpengine 10.5 (offer with transport-protocol RTP/SAVP; the second set
// with SDES: pad, lifetime, unencrypted_srtcp).
const RTPENGINE_DEFAULT = [
  '1 AEAD_AES_256_GCM inline:quxjv9Aog0kMRq7X4YPIl1wE6cWZWyQRu7G2JbGqB+Cugr9L134Aic3bzIk',
  '2 AEAD_AES_128_GCM inline:Bg8YUxwbLr/2L2zSSsplbgNvNo5ia5BxotXX5Q',
  '3 AES_256_CM_HMAC_SHA1_80 inline:pzcdDX0+DJsgI5HTI8Ow79m4ebr+Q4z2gR1223FhuUMK2D6TAfQMlzG6vJt0yw',
  '4 AES_256_CM_HMAC_SHA1_32 inline:W5ovKx1xxYk8RdN6lCIJZ54ke3aH60ZJ3YdMC8Bla6P2DCeLPWGY37v9b4Xa8Q',
  '5 AES_192_CM_HMAC_SHA1_80 inline:2Td1Ywje4Hu/OKB79/8vuC+6Cs4raQaN7BoA9NUddV9qFyq+gao',
  '6 AES_192_CM_HMAC_SHA1_32 inline:g/v0l3CR+iJONn6L/2KI5vxp288Ks0HRPU0l0xGZ+iTiZYRpEIs',
  '7 AES_CM_128_HMAC_SHA1_80 inline:+korV6Pg+Gf/VXSj1p6W0LJjI7Xee08u9WEQZalm',
  '8 AES_CM_128_HMAC_SHA1_32 inline:phTcByTd68Cl7iR9ZS/YKXC8pgOHAABftKpVNmjP',
  '9 F8_128_HMAC_SHA1_80 inline:u558HFZO61Qckgs8Qebqe2wWPjC0AjUuywC7jO1l',
  '10 F8_128_HMAC_SHA1_32 inline:9/R9m5VsYMC/P+rZEIzWMELfCOtwKS9e0T90qfPo',
  '11 NULL_HMAC_SHA1_80 inline:+b2ePD4ScKzQpjxwS0qho1Kr6y0yx3UJX/9l4RDA',
  '12 NULL_HMAC_SHA1_32 inline:g19MNXk4X9ufShHrn+nQO3ZMjW80NAhGoQG937Sn',
];
const RTPENGINE_PADDED = [
  '1 AEAD_AES_256_GCM inline:Y6zd/61EZmHgDoSzBPMgWGJBXAuuLOtbZ+ZdjimOvt0EY0mABfRUFrEO/q8=|2^31 UNENCRYPTED_SRTCP',
  '2 AEAD_AES_128_GCM inline:lmNi4e+L7/vLDoijcfXce9r7xkA2W3SZqpcreQ==|2^31 UNENCRYPTED_SRTCP',
  '3 AES_256_CM_HMAC_SHA1_32 inline:3eJWyDfR2ge6uJq6x/MD2skhEbRAGZUEMa/0tgixFOO5BKyk3cboq4n7IW78eg==|2^31 UNENCRYPTED_SRTCP',
  '4 AES_192_CM_HMAC_SHA1_80 inline:Z0iKF4K8V36plQ2q6P3NXQ0yITdvj1ejCPsB9SpmE1d7ErXvrjw=|2^31 UNENCRYPTED_SRTCP',
  '6 AES_CM_128_HMAC_SHA1_80 inline:CVFecPwzmrEOvt+6uetXgfuY65K7CVsw4aD/lg9A|2^31 UNENCRYPTED_SRTCP',
];

test('rtpengine 10.5 lines parse and format back byte for byte', () => {
  for (const line of RTPENGINE_DEFAULT) assert.equal(formatCrypto(parseCrypto(line)!), line);
  for (const line of RTPENGINE_PADDED) {
    const c = parseCrypto(line)!;
    assert.equal(c.keys[0]!.lifetime, '2^31');
    assert.deepEqual(c.sessionParams, ['UNENCRYPTED_SRTCP']);
    assert.equal(formatCrypto(c, { pad: true }), line);
    assert.equal(formatCrypto({ ...c, keys: [{ ...c.keys[0]!, lifetime: undefined }] }, { pad: true, lifetime: true }), line);
  }
});

test('our offer: rtpengine order, tags from 1, base64 lengths as rtpengine (40/51/62, GCM 38/59)', () => {
  const offer = sdesOffer();
  assert.deepEqual(offer.map((c) => c.suite.name), SDES_OFFER_ORDER);
  assert.deepEqual(SDES_OFFER_ORDER, RTPENGINE_DEFAULT.map((l) => l.split(' ')[1]));
  assert.deepEqual(offer.map((c) => c.tag), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const lens = offer.map((c) => formatCrypto(c).split('inline:')[1]!.length);
  assert.deepEqual(lens, RTPENGINE_DEFAULT.map((l) => l.split('inline:')[1]!.length));
  assert.deepEqual(lens, [59, 38, 62, 62, 51, 51, 40, 40, 40, 40, 40, 40]);
  const padded = offer.map((c) => formatCrypto(c, { pad: true }).split(' ')[2]!);
  assert.ok(padded[0]!.endsWith('=') && padded[1]!.endsWith('==') && !padded[6]!.endsWith('='));
  assert.notEqual(offer[0]!.keys[0]!.key.toString('hex'), sdesOffer()[0]!.keys[0]!.key.toString('hex'), 'fresh keys');
});

test('offer filtering: SDES-no-<suite> renumbers tags; only-<suite>; session params on every line', () => {
  const no = sdesOffer({ no: ['AES_256_CM_HMAC_SHA1_80'] }, ['UNENCRYPTED_SRTCP']);
  assert.equal(no.length, 11);
  assert.equal(no[2]!.suite.name, 'AES_256_CM_HMAC_SHA1_32');
  assert.equal(no[2]!.tag, 3);
  assert.ok(formatCrypto(no[5]!).endsWith(' UNENCRYPTED_SRTCP'));
  const only = sdesOffer({ only: ['AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_128_GCM'] });
  assert.deepEqual(only.map((c) => `${c.tag} ${c.suite.name}`), ['1 AEAD_AES_128_GCM', '2 AES_CM_128_HMAC_SHA1_32']);
});

test('RFC 4568 example key parameters: lifetime, MKI, several keys', () => {
  const c = parseCrypto('1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32')!;
  assert.equal(c.tag, 1);
  assert.deepEqual(c.keys[0]!.lifetime, '2^20');
  assert.deepEqual(c.keys[0]!.mki, { value: 1, length: 32 });
  assert.equal(Buffer.concat([c.keys[0]!.key, c.keys[0]!.salt]).toString('base64'), 'PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR');
  assert.equal(formatCrypto(c), '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32');
  const mkiOnly = parseCrypto('2 AES_CM_128_HMAC_SHA1_32 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4 KDR=0 FEC_ORDER=FEC_SRTP')!;
  assert.deepEqual(mkiOnly.keys[0]!.mki, { value: 1066, length: 4 });
  assert.equal(mkiOnly.keys[0]!.lifetime, undefined);
  assert.deepEqual(mkiOnly.sessionParams, ['KDR=0', 'FEC_ORDER=FEC_SRTP']);
  const two = parseCrypto('3 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4;inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|2^20|2:4')!;
  assert.equal(two.keys.length, 2);
  assert.equal(two.keys[1]!.mki?.value, 2);
});

test('malformed or unsupported lines are null', () => {
  for (const bad of [
    '', '1', '1 AES_CM_128_HMAC_SHA1_80', 'x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR',
    '1 FOO inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR',
    '1 aes_cm_128_hmac_sha1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR',
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV', // short key
    '1 AES_256_CM_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR', // 128-bit key for a 256 suite
    '1 AES_CM_128_HMAC_SHA1_80 uri:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR',
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanV!cjkpPywjNWhcYD0mXXtxaVBR',
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4|2^20',
    '1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|x',
    '1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR',
  ]) assert.equal(parseCrypto(bad), null, bad);
});

test('answer: first offered suite we support, same tag, our own key, flags echoed', () => {
  const offered = [
    '0 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=3',
    '3 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 UNENCRYPTED_SRTCP',
    '5 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20 UNENCRYPTED_SRTCP WSH=64',
    '7 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj',
  ].map((l) => parseCrypto(l)!);
  const r = sdesAnswer(offered)!;
  assert.equal(r.offer.tag, 5, 'KDR≠0 and MKI lines skipped');
  assert.equal(r.answer.tag, 5);
  assert.equal(r.answer.suite.name, 'AES_CM_128_HMAC_SHA1_32');
  assert.deepEqual(r.answer.sessionParams, ['UNENCRYPTED_SRTCP']);
  assert.notDeepEqual(r.answer.keys[0]!.key, r.offer.keys[0]!.key);
  assert.match(formatCrypto(r.answer), /^5 AES_CM_128_HMAC_SHA1_32 inline:[A-Za-z0-9+/]{40} UNENCRYPTED_SRTCP$/);
  assert.deepEqual(sdesPolicy(r.answer), { encryptRtp: true, encryptRtcp: false, authRtp: true });
  assert.equal(sdesAnswer(offered, { no: ['AES_CM_128_HMAC_SHA1_32'] })!.offer.tag, 7);
  assert.equal(sdesAnswer(offered, { only: ['AEAD_AES_128_GCM'] }), null);
  assert.equal(sdesAnswer([]), null);
});

test('negotiated SDES keys drive SRTP contexts both ways', () => {
  const offer = sdesOffer({ only: ['AES_CM_128_HMAC_SHA1_80'] });
  const { offer: chosen, answer } = sdesAnswer(offer.map((c) => parseCrypto(formatCrypto(c))!))!;
  const ctx = (c: typeof answer) => createSrtpContext(c.suite, c.keys[0]!.key, c.keys[0]!.salt, sdesPolicy(c));
  const rtp = Buffer.concat([Buffer.from('80000001000000000000abcd', 'hex'), Buffer.alloc(20, 7)]);
  assert.deepEqual(ctx(chosen).unprotectRtp(ctx(offer[0]!).protectRtp(rtp)!), rtp);
  assert.deepEqual(ctx(offer[0]!).unprotectRtp(ctx(answer).protectRtp(rtp)!), null, 'different keys per direction');
  assert.deepEqual(generateCrypto(9, srtpSuite('AEAD_AES_256_GCM')!).keys[0]!.salt.length, 12);
});
