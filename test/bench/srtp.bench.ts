// Run by hand: node dist/test/bench/srtp.bench.js
// Prints SRTP protect+unprotect pairs per second for 172-byte RTP: ours with the native addon's
// primitives, ours on node:crypto alone (the fallback), and werift-rtp.
import { randomBytes } from 'node:crypto';
import werift from 'werift-rtp';
import { createSrtpContext } from '../../media/srtp/context.js';
import { srtpCryptoKind } from '../../media/srtp/native.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

function packet(seq: number): Buffer {
  const b = randomBytes(172);
  b[0] = 0x80; b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(0x5eed, 8);
  return b;
}

function rate(name: string, pair: (p: Buffer) => void): number {
  const pkts = Array.from({ length: 1024 }, (_, i) => packet(i));
  let seq = 0; // ascending, through wraps, as a real stream: the receiver's replay check must pass
  for (let i = 0; i < 2000; i++) {
    const p = pkts[i & 1023]!;
    p.writeUInt16BE(seq++ & 0xffff, 2);
    pair(p); // warm up the JIT
  }
  let n = 0;
  const start = process.hrtime.bigint();
  const stop = start + BigInt(SECONDS * 1e9);
  while (process.hrtime.bigint() < stop) {
    for (let i = 0; i < 256; i++) {
      const p = pkts[i & 1023]!;
      p.writeUInt16BE(seq++ & 0xffff, 2);
      pair(p);
    }
    n += 256;
  }
  const perSec = Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9));
  console.log(`${name.padEnd(44)} ${perSec.toLocaleString('en').padStart(10)} pairs/s`);
  return perSec;
}

for (const [suite, profile, saltLen] of [['AES_CM_128_HMAC_SHA1_80', 1, 14], ['AEAD_AES_128_GCM', 7, 12]] as const) {
  const key = randomBytes(16), salt = randomBytes(saltLen);
  for (const impl of ['native', 'js'] as const) {
    process.env.RTPRELAY_SRTP_CRYPTO = impl;
    const kind = srtpCryptoKind();
    if (impl === 'native' && kind !== 'native') continue; // addon not built
    const tx = createSrtpContext(suite, key, salt), rx = createSrtpContext(suite, key, salt);
    rate(`rtprelay (${kind}) ${suite}`, (p) => {
      if (rx.unprotectRtp(tx.protectRtp(p)!) === null) throw new Error('round trip failed');
    });
  }
  delete process.env.RTPRELAY_SRTP_CRYPTO;
  const s = new werift.SrtpSession({
    keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt }, profile,
  });
  rate(`werift-rtp ${suite}`, (p) => {
    const r = werift.RtpPacket.deSerialize(p);
    s.decrypt(s.encrypt(r.payload, r.header));
  });
}
