// Interop with werift-rtp's SRTP (as used with browsers): each side encrypts, the other decrypts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import werift from 'werift-rtp';
import { createSrtpContext } from '../../../../media/srtp/context.js';

const { SrtpSession, SrtcpSession, RtpPacket } = werift;

function rtp(seq: number, ssrc: number): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = 111;
  h.writeUInt16BE(seq & 0xffff, 2);
  h.writeUInt32BE((seq * 960) >>> 0, 4);
  h.writeUInt32BE(ssrc, 8);
  return Buffer.concat([h, randomBytes(160)]);
}

interface WeriftCipher { authTagLength: number; generateSrtpAuthTag: (...a: unknown[]) => Buffer }

function weriftPair(profile: number, keyLen: number, saltLen: number, sha1_32: boolean) {
  const ours = { key: randomBytes(keyLen), salt: randomBytes(saltLen) };
  const theirs = { key: randomBytes(keyLen), salt: randomBytes(saltLen) };
  // werift's "local" context encrypts (their key), its "remote" context decrypts (our key).
  const keys = { localMasterKey: theirs.key, localMasterSalt: theirs.salt, remoteMasterKey: ours.key, remoteMasterSalt: ours.salt };
  const session = new SrtpSession({ keys, profile: profile as 1 });
  const rtcpSession = new SrtcpSession({ keys, profile: profile as 1 });
  if (sha1_32) {
    // werift implements only the _80 tag; truncating its HMAC gives HMAC_SHA1_32 exactly.
    for (const ctx of [session.localContext, session.remoteContext]) {
      const c = ctx.cipher as unknown as WeriftCipher;
      const orig = c.generateSrtpAuthTag.bind(c);
      c.authTagLength = 4;
      c.generateSrtpAuthTag = (...a) => orig(...a).subarray(0, 4);
    }
  }
  return { ours, theirs, session, rtcpSession };
}

const CASES = [
  { suite: 'AES_CM_128_HMAC_SHA1_80', profile: 1, key: 16, salt: 14, sha1_32: false },
  { suite: 'AES_CM_128_HMAC_SHA1_32', profile: 1, key: 16, salt: 14, sha1_32: true },
  { suite: 'AEAD_AES_128_GCM', profile: 7, key: 16, salt: 12, sha1_32: false },
];

for (const c of CASES) {
  test(`${c.suite}: werift → us and us → werift, across a sequence wrap`, () => {
    const w = weriftPair(c.profile, c.key, c.salt, c.sha1_32);
    const enc = createSrtpContext(c.suite, w.ours.key, w.ours.salt);
    const dec = createSrtpContext(c.suite, w.theirs.key, w.theirs.salt);
    for (let seq = 65530; seq < 65545; seq++) {
      const p = rtp(seq, 0xcafe0001);
      const parsed = RtpPacket.deSerialize(p);
      const fromWerift = w.session.encrypt(parsed.payload, parsed.header);
      assert.deepEqual(dec.unprotectRtp(fromWerift), p, `werift → us, seq ${seq & 0xffff}`);
      const fromUs = enc.protectRtp(p)!;
      assert.deepEqual(w.session.decrypt(fromUs), p, `us → werift, seq ${seq & 0xffff}`);
    }
    if (!c.sha1_32) { // werift has no 32-bit RTP tag suite of its own, so RTCP only here
      for (let i = 0; i < 3; i++) {
        const r = Buffer.concat([Buffer.from([0x80, 200, 0, 6]), Buffer.from('cafe0001', 'hex'), randomBytes(20)]);
        assert.deepEqual(dec.unprotectRtcp(w.rtcpSession.encrypt(r)), r, 'SRTCP werift → us');
        assert.deepEqual(w.rtcpSession.decrypt(enc.protectRtcp(r)!), r, 'SRTCP us → werift');
      }
    }
  });
}
