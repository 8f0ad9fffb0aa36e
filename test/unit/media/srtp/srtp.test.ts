import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { aesCmCrypt, aesF8Crypt, deriveKey, LABEL } from '../../../../media/srtp/cipher.js';
import { createSrtpContext, SrtpContext } from '../../../../media/srtp/context.js';
import { estimateIndex, IndexWindow } from '../../../../media/srtp/replay.js';
import { SRTP_SUITES, srtpSuite, srtpSuiteByDtlsProfile, type SrtpSuite } from '../../../../media/srtp/suites.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function rtp(seq: number, ssrc = 0x11223344, payload: Buffer = Buffer.alloc(160, seq & 0xff), extra?: { csrc?: number; ext?: Buffer }): Buffer {
  const cc = extra?.csrc ?? 0;
  const ext = extra?.ext;
  const h = Buffer.alloc(12 + 4 * cc + (ext ? 4 + ext.length : 0));
  h[0] = 0x80 | (ext ? 0x10 : 0) | cc;
  h[1] = 0;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE((seq * 160) >>> 0, 4);
  h.writeUInt32BE(ssrc, 8);
  for (let i = 0; i < cc; i++) h.writeUInt32BE(0xc0000000 + i, 12 + 4 * i);
  if (ext) {
    h.writeUInt16BE(0xbede, 12 + 4 * cc);
    h.writeUInt16BE(ext.length / 4, 14 + 4 * cc);
    ext.copy(h, 16 + 4 * cc);
  }
  return Buffer.concat([h, payload]);
}

function rtcpSr(ssrc = 0x11223344): Buffer {
  const b = Buffer.alloc(28);
  b[0] = 0x80; b[1] = 200; b.writeUInt16BE(6, 2); b.writeUInt32BE(ssrc, 4);
  b.fill(0xab, 8);
  return b;
}

function pair(suite: SrtpSuite, policy = {}): [SrtpContext, SrtpContext] {
  const key = randomBytes(suite.keyLength), salt = randomBytes(suite.saltLength);
  return [createSrtpContext(suite, key, salt, policy), createSrtpContext(suite.name, key, salt, policy)];
}

// ---- RFC vectors ---------------------------------------------------------------------------

test('RFC 3711 B.2: AES-CM keystream, first and last blocks of the 65282-block segment', () => {
  const crypt = aesCmCrypt(hex('2B7E151628AED2A6ABF7158809CF4F3C'));
  const n = 1044512;
  const ks = Buffer.alloc(n);
  crypt(ks, Buffer.alloc(n), 0, n, hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000'));
  assert.deepEqual(ks.subarray(0, 48), hex('E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0'));
  assert.deepEqual(ks.subarray(n - 48), hex('EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44'));
});

test('RFC 3711 B.3: key derivation (cipher key, salt, the 94-byte auth key stream)', () => {
  const mk = hex('E1F97A0D3E018BE0D64FA32C06DE4139'), ms = hex('0EC675AD498AFEEBB6960B3AABE6');
  assert.deepEqual(deriveKey(mk, ms, LABEL.rtpEncryption, 16), hex('C61E7A93744F39EE10734AFE3FF7A087'));
  assert.deepEqual(deriveKey(mk, ms, LABEL.rtpSalt, 14), hex('30CBBC08863D8C85D49DB34A9AE1'));
  assert.deepEqual(deriveKey(mk, ms, LABEL.rtpAuth, 94), hex(`CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
    E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2`));
});

test('RFC 3711 B.1: AES-f8 encrypts the sample packet', () => {
  const crypt = aesF8Crypt(hex('234829008467be186c3de14aae72d62c'), hex('32f2870d'));
  const plain = hex('70736575646f72616e646f6d6e657373 20697320746865206e65787420626573 74207468696e67');
  const out = Buffer.alloc(plain.length);
  crypt(out, plain, 0, plain.length, hex('006e5cba50681de55c621599d462564a'));
  assert.deepEqual(out, hex('019ce7a26e7854014a6366aa95d4eefd 1ad4172a14f9faf455b7f1d4b62bd08f 562c0eef7c4802'));
});

// RFC 7714 §16–17 publish session keys, not master keys: reach past the KDF by replacing the
// derived stream keys with the published ones.
function gcmWithSessionKeys(keyHex: string): SrtpContext {
  const key = hex(keyHex);
  const ctx = createSrtpContext(key.length === 16 ? 'AEAD_AES_128_GCM' : 'AEAD_AES_256_GCM', randomBytes(key.length), randomBytes(12));
  const salt = hex('517569642070726f2071756f');
  for (const k of ['rtp', 'rtcp'] as const) {
    const keys = (ctx as unknown as Record<string, { aead: unknown; salt: Buffer }>)[k]!;
    keys.aead = createSecretKey(key);
    keys.salt = salt;
  }
  return ctx;
}

const GCM_PLAIN_RTP = hex('8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573');
const GCM_PLAIN_RTCP = hex('81c8000d4d6172734e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef');
const GCM_VECTORS = [
  {
    key: '000102030405060708090a0b0c0d0e0f',
    srtp: '8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce',
    srtcp: '81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4',
  },
  {
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
    srtp: '8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13',
    srtcp: '81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4',
  },
];

for (const v of GCM_VECTORS) {
  test(`RFC 7714 §16–17: AES-${v.key.length * 4}-GCM SRTP and SRTCP packets`, () => {
    const tx = gcmWithSessionKeys(v.key);
    assert.deepEqual(tx.protectRtp(GCM_PLAIN_RTP), hex(v.srtp));
    const rx = gcmWithSessionKeys(v.key);
    assert.deepEqual(rx.unprotectRtp(hex(v.srtp)), GCM_PLAIN_RTP);
    const bad = hex(v.srtp); bad[20]! ^= 1;
    assert.equal(gcmWithSessionKeys(v.key).unprotectRtp(bad), null);

    // SRTCP index 0x5d4: advance the sender's counter to it.
    (tx as unknown as { txRtcp: Map<number, number> }).txRtcp.set(0x4d617273, 0x5d4);
    assert.deepEqual(tx.protectRtcp(GCM_PLAIN_RTCP), hex(v.srtcp));
    assert.deepEqual(rx.unprotectRtcp(hex(v.srtcp)), GCM_PLAIN_RTCP);
    assert.equal(rx.unprotectRtcp(hex(v.srtcp)), null, 'the same SRTCP index twice is a replay');
    assert.equal(rx.failures.replay, 1);
  });
}

// ---- every suite -----------------------------------------------------------------------------

test('the suite table: lengths per RFC, lookups by name and DTLS profile', () => {
  assert.equal(SRTP_SUITES.length, 12);
  assert.deepEqual(srtpSuite('AES_CM_128_HMAC_SHA1_32'), { name: 'AES_CM_128_HMAC_SHA1_32', cipher: 'aes-cm', keyLength: 16, saltLength: 14, rtpTagLength: 4, rtcpTagLength: 10, dtlsProfile: 2 });
  assert.equal(srtpSuite('AES_192_CM_HMAC_SHA1_80')?.keyLength, 24);
  assert.equal(srtpSuite('AEAD_AES_256_GCM')?.saltLength, 12);
  assert.equal(srtpSuite('aes_cm_128_hmac_sha1_80'), undefined);
  assert.equal(srtpSuiteByDtlsProfile(7)?.name, 'AEAD_AES_128_GCM');
  assert.throws(() => createSrtpContext('AES_CM_128_HMAC_SHA1_80', randomBytes(15), randomBytes(14)), RangeError);
  assert.throws(() => createSrtpContext('NOPE', randomBytes(16), randomBytes(14)), RangeError);
});

for (const suite of SRTP_SUITES) {
  test(`${suite.name}: RTP and RTCP round trip, tampering and replay rejected`, () => {
    const [tx, rx] = pair(suite);
    const variants = [undefined, { csrc: 2 }, { ext: Buffer.from('01020304aabbccdd', 'hex') }];
    for (const [v, extra] of variants.entries()) {
      for (let seq = 1000; seq < 1010; seq++) {
        const p = rtp(seq, 0x1234 + v, randomBytes(100 + seq % 7), extra);
        const s = tx.protectRtp(p)!;
        assert.equal(s.length, p.length + suite.rtpTagLength);
        if (suite.cipher !== 'null') assert.notDeepEqual(s.subarray(p.length - 100, p.length), p.subarray(p.length - 100));
        else assert.deepEqual(s.subarray(0, p.length), p);
        assert.deepEqual(s.subarray(0, p.length - 100 - (seq % 7)), p.subarray(0, p.length - 100 - (seq % 7)), 'header in clear');
        assert.deepEqual(rx.unprotectRtp(s), p);
        assert.equal(rx.unprotectRtp(s), null, 'replay');
      }
    }
    const p = rtp(5000, 0x1234);
    const s = tx.protectRtp(p)!;
    for (const at of [1, 3, 12, s.length - 1]) {
      const t = Buffer.from(s); t[at]! ^= 0x40;
      assert.equal(rx.unprotectRtp(t), null, `flipped byte ${at}`);
    }
    assert.deepEqual(rx.unprotectRtp(s), p, 'the untampered packet still passes after forgeries');

    const c = rtcpSr(0x1234);
    const sc = tx.protectRtcp(c)!;
    assert.equal(sc.length, c.length + 4 + suite.rtcpTagLength);
    assert.deepEqual(rx.unprotectRtcp(sc), c);
    assert.equal(rx.unprotectRtcp(sc), null, 'SRTCP replay');
    const t = Buffer.from(tx.protectRtcp(c)!); t[10]! ^= 1;
    assert.equal(rx.unprotectRtcp(t), null, 'tampered SRTCP');
    assert.ok(rx.failures.replay >= 31 && rx.failures.auth >= 5);
  });
}

test('SRTCP carries the E flag and a per-SSRC index from 0; UNENCRYPTED_SRTCP clears E', () => {
  const [tx, rx] = pair(srtpSuite('AES_CM_128_HMAC_SHA1_80')!);
  const c = rtcpSr(7);
  for (let i = 0; i < 3; i++) {
    const s = tx.protectRtcp(c)!;
    assert.equal(s.readUInt32BE(c.length), (0x80000000 | i) >>> 0);
    assert.notDeepEqual(s.subarray(8, c.length), c.subarray(8));
    assert.deepEqual(rx.unprotectRtcp(s), c);
  }
  assert.equal(tx.protectRtcp(rtcpSr(8))!.readUInt32BE(c.length), 0x80000000, 'another SSRC starts at 0');

  const suite = srtpSuite('AES_CM_128_HMAC_SHA1_32')!;
  const key = randomBytes(16), salt = randomBytes(14);
  const ptx = createSrtpContext(suite, key, salt, { encryptRtcp: false });
  const s = ptx.protectRtcp(c)!;
  assert.equal(s.readUInt32BE(c.length), 0, 'E = 0, index 0');
  assert.deepEqual(s.subarray(0, c.length), c, 'sent in clear');
  assert.equal(s.length, c.length + 4 + 10, '80-bit SRTCP tag even for _32');
  assert.deepEqual(createSrtpContext(suite, key, salt).unprotectRtcp(s), c, 'receiver follows the E flag');

  for (const name of ['AEAD_AES_128_GCM', 'AES_256_CM_HMAC_SHA1_80']) {
    const [a, b] = pair(srtpSuite(name)!, { encryptRtcp: false, encryptRtp: false });
    const r = rtp(1);
    const sr = a.protectRtp(r)!;
    assert.deepEqual(sr.subarray(0, r.length), r, `${name}: UNENCRYPTED_SRTP sends the payload in clear`);
    assert.deepEqual(b.unprotectRtp(sr), r);
    const bad = Buffer.from(sr); bad[30]! ^= 1;
    assert.equal(b.unprotectRtp(bad), null, `${name}: still authenticated`);
    const sc = a.protectRtcp(c)!;
    assert.deepEqual(sc.subarray(0, c.length), c);
    assert.deepEqual(b.unprotectRtcp(sc), c);
  }
});

test('UNAUTHENTICATED_SRTP: no tag on RTP, RTCP still tagged', () => {
  const [tx, rx] = pair(srtpSuite('AES_CM_128_HMAC_SHA1_80')!, { authRtp: false });
  const p = rtp(1);
  const s = tx.protectRtp(p)!;
  assert.equal(s.length, p.length);
  assert.deepEqual(rx.unprotectRtp(s), p);
  assert.equal(tx.protectRtcp(rtcpSr())!.length, 28 + 4 + 10);
});

// ---- rollover counter and replay window -------------------------------------------------------

test('RFC 3711 Appendix A index estimate', () => {
  assert.equal(estimateIndex(100, 101), 101);
  assert.equal(estimateIndex(65535, 0), 65536, 'wrap forward');
  assert.equal(estimateIndex(65536 + 2, 65534), 65534, 'late packet from before the wrap');
  assert.equal(estimateIndex(100, 40000), -65536 + 40000, 'ROC - 1 before the first ROC is negative');
  assert.equal(estimateIndex(5 * 65536 + 40000, 7000), 6 * 65536 + 7000);
  assert.equal(estimateIndex(5 * 65536 + 40000, 8000), 5 * 65536 + 8000);
});

test('replay window: 64 indices, older ones dropped, gaps fillable once', () => {
  const w = new IndexWindow(1000);
  assert.equal(w.fresh(1000), false);
  assert.equal(w.fresh(999), true);
  w.accept(1040);
  for (const i of [1039, 1001, 977]) assert.equal(w.fresh(i), true, `${i}`);
  assert.equal(w.fresh(1000), false, 'still remembered 40 below');
  assert.equal(w.fresh(976), false, '64 below the top is too old');
  w.accept(1001);
  assert.equal(w.fresh(1001), false);
  w.accept(1100); // shift by 60: 1040 is 60 below, 1001 has fallen out
  assert.equal(w.fresh(1040), false);
  assert.equal(w.fresh(1037), true);
  assert.equal(w.fresh(1036), false);
  w.accept(1300);
  assert.equal(w.fresh(1299), true);
  assert.equal(w.fresh(1300), false);
});

// Test-only: recover key material so a second receiver can be made from the same master key.
const KEYS = new WeakMap<SrtpContext, [Buffer, Buffer]>();
function keysOf(ctx: SrtpContext): [Buffer, Buffer] { return KEYS.get(ctx)!; }
function pairRemembered(name: string): [SrtpContext, SrtpContext] {
  const s = srtpSuite(name)!;
  const k = randomBytes(s.keyLength), salt = randomBytes(s.saltLength);
  const a = createSrtpContext(s, k, salt), b = createSrtpContext(s, k, salt);
  KEYS.set(a, [k, salt]); KEYS.set(b, [k, salt]);
  return [a, b];
}

test('ROC wraps at seq 65535 → 0, and reordering across the wrap decrypts', () => {
  const [tx, rx] = pairRemembered('AES_CM_128_HMAC_SHA1_80');
  const seqs = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3];
  const packets = seqs.map((s) => ({ plain: rtp(s), srtp: tx.protectRtp(rtp(s))! }));
  // deliver in a scrambled order that crosses the wrap both ways
  for (const i of [0, 1, 6, 2, 7, 5, 3, 9, 4, 8]) {
    assert.deepEqual(rx.unprotectRtp(packets[i]!.srtp), packets[i]!.plain, `seq ${seqs[i]}`);
  }
  for (const p of packets) assert.equal(rx.unprotectRtp(p.srtp), null, 'each once only');
  // a receiver that starts just before the wrap follows it too
  const fresh = createSrtpContext("AES_CM_128_HMAC_SHA1_80", ...keysOf(tx));
  assert.deepEqual(fresh.unprotectRtp(packets[5]!.srtp), packets[5]!.plain);
  assert.deepEqual(fresh.unprotectRtp(packets[6]!.srtp), packets[6]!.plain, 'receiver wraps too');
});

test('loss of more than 2^15 packets: the RFC estimate guesses the wrong ROC and the packet is dropped', () => {
  for (const name of ['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM']) {
    const [tx, rx] = pairRemembered(name);
    // 60000 → 100000 (seq 34464, ROC 1): 40000 lost; Appendix A guesses ROC 0.
    assert.ok(rx.unprotectRtp(tx.protectRtp(rtp(60000))!));
    for (let i = 60001; i < 100000; i += 1000) tx.protectRtp(rtp(i & 0xffff)); // sender moves on, receiver hears none
    tx.protectRtp(rtp(99999 & 0xffff));
    const lost = tx.protectRtp(rtp(100000 & 0xffff))!;
    // Guessed index 34464 (ROC 0) is 25536 below the highest seen, so it is dropped as too old,
    // before any authentication; with ROC 0 it would not authenticate either.
    assert.equal(rx.unprotectRtp(lost), null, `${name}: wrong ROC guess, packet dropped`);
    assert.equal(rx.failures.replay, 1);
    // a jump just under 2^15 is still guessed right
    const [tx2, rx2] = pairRemembered(name);
    assert.ok(rx2.unprotectRtp(tx2.protectRtp(rtp(60000))!));
    for (let i = 60001; i <= 60000 + 32767; i += 1000) tx2.protectRtp(rtp(i & 0xffff));
    const far = rtp((60000 + 32767) & 0xffff);
    assert.deepEqual(rx2.unprotectRtp(tx2.protectRtp(far)!), far);
  }
});

test('malformed input gives null and is counted, never throws', () => {
  const [tx, rx] = pair(srtpSuite('AES_CM_128_HMAC_SHA1_80')!);
  const junk = [Buffer.alloc(0), Buffer.alloc(11, 0x80), Buffer.from('00'.repeat(40), 'hex'),
    Buffer.concat([Buffer.from([0x90, 0, 0, 1]), Buffer.alloc(8), Buffer.from([0xbe, 0xde, 0xff, 0xff])]),
    Buffer.concat([Buffer.from([0x8f]), Buffer.alloc(30)])];
  for (const j of junk) {
    assert.equal(tx.protectRtp(j), null);
    assert.equal(rx.unprotectRtp(j), null);
    assert.equal(rx.unprotectRtcp(j), null);
  }
  assert.equal(tx.protectRtcp(Buffer.alloc(4)), null);
  for (let i = 0; i < 200; i++) {
    const r = randomBytes(i % 80);
    rx.unprotectRtp(r); rx.unprotectRtcp(r);
  }
  const [g] = pair(srtpSuite('AEAD_AES_128_GCM')!);
  for (let i = 0; i < 200; i++) { const r = randomBytes(i % 80); r[0] = 0x80; g.unprotectRtp(r); g.unprotectRtcp(r); }
  assert.ok(rx.failures.malformed > 0);
});
