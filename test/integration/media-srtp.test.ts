// SDES-SRTP party ↔ plain party through LocalMediaPlane (plans installed by hand), real UDP on
// 127.0.0.1. The test encrypts and decrypts as the SRTP phone with media/srtp.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalMediaPlane } from '../../media/relay.js';
import { createSrtpContext } from '../../media/srtp/context.js';
import type { SocketPlan } from '../../media/plane.js';
import { udpPeer, rtp, type Peer } from '../support/media.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80';

export function basePlan(id: number, remote: Peer | null, sink: number | null): SocketPlan {
  return {
    id, kind: 'rtp', remote: remote ? { address: remote.address, port: remote.port } : null, sink, forward: true,
    asymmetric: false, strictSource: false, mediaHandover: false, payloadTypes: [], rtcpMux: false, rtcpSink: null,
  };
}

function keys(): { suite: string; key: string; salt: string; k: Buffer; s: Buffer } {
  const k = randomBytes(16), s = randomBytes(14);
  return { suite: SUITE, key: k.toString('base64'), salt: s.toString('base64'), k, s };
}

/** RR + PLI (PSFB FMT 1), a typical browser compound packet. */
function rrWithPli(ssrc: number): Buffer {
  const b = Buffer.alloc(8 + 12);
  b[0] = 0x80; b[1] = 201; b.writeUInt16BE(1, 2); b.writeUInt32BE(ssrc, 4);
  b[8] = 0x81; b[9] = 206; b.writeUInt16BE(2, 10); b.writeUInt32BE(ssrc, 12); b.writeUInt32BE(0x99, 16);
  return b;
}

async function setup(t: import('node:test').TestContext) {
  const base = 52000 + 2 * Math.floor(Math.random() * 2000);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  const pa = await plane.openPair('127.0.0.1');
  const pb = await plane.openPair('127.0.0.1');
  const a = await udpPeer(t), b = await udpPeer(t), bRtcp = await udpPeer(t);
  const fromA = keys(), toA = keys();
  plane.install([
    { ...basePlan(pa.rtp, a, pb.rtp), rtcpMux: true, rtcpSink: pb.rtcp,
      crypto: { sdes: { rx: fromA, tx: toA }, dtls: null }, rtcpFeedback: true },
    { ...basePlan(pb.rtp, b, pa.rtp), rtcpFeedback: false },
    { ...basePlan(pb.rtcp, bRtcp, pa.rtp), kind: 'rtcp', rtcpFeedback: false },
  ]);
  // The SRTP phone: encrypts with the keys it announced, decrypts with the ones we gave it.
  const phoneTx = createSrtpContext(SUITE, fromA.k, fromA.s);
  const phoneRx = createSrtpContext(SUITE, toA.k, toA.s);
  return { plane, pa, pb, a, b, bRtcp, phoneTx, phoneRx };
}

test('SDES-SRTP party <-> plain party: decrypted one way, encrypted the other', async (t) => {
  const { plane, pa, pb, a, b, phoneTx, phoneRx } = await setup(t);
  for (let seq = 1; seq <= 3; seq++) {
    const clear = rtp({ seq, ts: seq * 160, ssrc: 0xaaaa0001 });
    const srtp = phoneTx.protectRtp(clear)!;
    assert.notDeepEqual(srtp.subarray(12, 172), clear.subarray(12));
    await a.send(srtp, pa.port);
    const got = await b.recv();
    assert.ok(got, `plain side got packet ${seq}`);
    assert.deepEqual(got.msg, clear);
  }
  for (let seq = 1; seq <= 3; seq++) {
    const clear = rtp({ seq, ts: seq * 160, ssrc: 0xbbbb0001 });
    await b.send(clear, pb.port);
    const got = await a.recv();
    assert.ok(got, `SRTP side got packet ${seq}`);
    assert.equal(got.msg.length, clear.length + 10);
    assert.deepEqual(phoneRx.unprotectRtp(got.msg), clear);
  }
  assert.equal(plane.stats([pa.rtp])[0]!.srtpFailures, 0);
});

test('SRTP: a tampered packet and a replayed one are dropped and counted', async (t) => {
  const { plane, pa, a, b, phoneTx } = await setup(t);
  const good = phoneTx.protectRtp(rtp({ seq: 10, ssrc: 0xaaaa0002 }))!;
  await a.send(good, pa.port);
  assert.ok(await b.recv());
  const tampered = phoneTx.protectRtp(rtp({ seq: 11, ssrc: 0xaaaa0002 }))!;
  tampered[20]! ^= 1;
  await a.send(tampered, pa.port);
  assert.equal(await b.recv(300), null);
  await a.send(good, pa.port); // replay
  assert.equal(await b.recv(300), null);
  const st = plane.stats([pa.rtp])[0]!;
  assert.equal(st.srtpFailures, 2);
  // The stream goes on afterwards.
  await a.send(phoneTx.protectRtp(rtp({ seq: 12, ssrc: 0xaaaa0002 }))!, pa.port);
  assert.ok(await b.recv());
});

test('SRTCP from the browser side reaches the plain phone decrypted and without feedback; its RTCP goes back as SRTCP', async (t) => {
  const { pa, pb, a, bRtcp, phoneTx, phoneRx } = await setup(t);
  const compound = rrWithPli(0xaaaa0003);
  await a.send(phoneTx.protectRtcp(compound)!, pa.port);
  const got = await bRtcp.recv();
  assert.ok(got);
  assert.deepEqual(got.msg, compound.subarray(0, 8)); // the RR alone
  // Feedback only: nothing is left for the phone.
  const pliOnly = compound.subarray(8);
  await a.send(phoneTx.protectRtcp(Buffer.from(pliOnly))!, pa.port);
  assert.equal(await bRtcp.recv(300), null);
  // The phone's RR goes to the browser side encrypted (SRTCP, E flag and index, 80-bit tag).
  const rr = compound.subarray(0, 8);
  await bRtcp.send(Buffer.from(rr), pb.port + 1);
  const back = await a.recv();
  assert.ok(back);
  assert.equal(back.msg.length, 8 + 4 + 10);
  assert.deepEqual(phoneRx.unprotectRtcp(back.msg), rr);
});

test('SRTP: unusable SDES keys mean no media either way (never clear text)', async (t) => {
  const base = 54100 + 2 * Math.floor(Math.random() * 500);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  const pa = await plane.openPair('127.0.0.1'), pb = await plane.openPair('127.0.0.1');
  const a = await udpPeer(t), b = await udpPeer(t);
  const bad = { suite: 'NO_SUCH_SUITE', key: 'AAAA', salt: 'AAAA' };
  plane.install([
    { ...basePlan(pa.rtp, a, pb.rtp), crypto: { sdes: { rx: bad, tx: bad }, dtls: null } },
    basePlan(pb.rtp, b, pa.rtp),
  ]);
  await b.send(rtp({ seq: 1 }), pb.port);
  assert.equal(await a.recv(300), null);
  await a.send(rtp({ seq: 1 }), pa.port);
  assert.equal(await b.recv(300), null);
});

test('SRTP in a media worker: relayed both ways, failures reported to the main thread', async (t) => {
  const { WorkerMediaPlane } = await import('../../media/worker-plane.js');
  const base = 55000 + 2 * Math.floor(Math.random() * 400);
  const plane = await WorkerMediaPlane.start({ min: base, max: base + 9 }, 1, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  const pa = await plane.openPair('127.0.0.1', 'w'), pb = await plane.openPair('127.0.0.1', 'w');
  const a = await udpPeer(t), b = await udpPeer(t);
  const fromA = keys(), toA = keys();
  plane.install([
    { ...basePlan(pa.rtp, a, pb.rtp), crypto: { sdes: { rx: fromA, tx: toA }, dtls: null } },
    basePlan(pb.rtp, b, pa.rtp),
  ]);
  const phoneTx = createSrtpContext(SUITE, fromA.k, fromA.s), phoneRx = createSrtpContext(SUITE, toA.k, toA.s);
  const clear = rtp({ seq: 1, ssrc: 0xabc });
  await a.send(phoneTx.protectRtp(clear)!, pa.port);
  assert.deepEqual((await b.recv())?.msg, clear);
  await b.send(clear, pb.port);
  const got = await a.recv();
  assert.ok(got);
  assert.deepEqual(phoneRx.unprotectRtp(got.msg), clear);
  const bad = phoneTx.protectRtp(rtp({ seq: 2, ssrc: 0xabc }))!;
  bad[bad.length - 1]! ^= 1;
  await a.send(bad, pa.port);
  for (let i = 0; i < 40 && plane.stats([pa.rtp])[0]!.srtpFailures !== 1; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(plane.stats([pa.rtp])[0]!.srtpFailures, 1);
});
