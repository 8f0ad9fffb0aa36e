// generate-RTCP through the relay: a plain party that sends no RTCP, an SDES-SRTP party that gets
// SRTCP sender/receiver reports built from what the relay forwards and receives. In process and in
// a media worker; real UDP on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalMediaPlane } from '../../media/relay.js';
import { createSrtpContext, type SrtpContext } from '../../media/srtp/context.js';
import type { MediaPlane, OpenedPair, SocketPlan } from '../../media/plane.js';
import { parseRtcp, type RtcpInfo } from '../../media/stats.js';
import { rtcpRR, rtp, udpPeer, type Peer } from '../support/media.js';

const SUITE = 'AES_CM_128_HMAC_SHA1_80';

function plan(id: number, remote: Peer, sink: number): SocketPlan {
  return {
    id, kind: 'rtp', remote: { address: remote.address, port: remote.port }, sink, forward: true,
    asymmetric: false, strictSource: false, mediaHandover: false, payloadTypes: [], rtcpMux: false, rtcpSink: null,
  };
}

function keys(): { suite: string; key: string; salt: string; k: Buffer; s: Buffer } {
  const k = randomBytes(16), s = randomBytes(14);
  return { suite: SUITE, key: k.toString('base64'), salt: s.toString('base64'), k, s };
}

interface Setup { pa: OpenedPair; pb: OpenedPair; a: Peer; b: Peer; bRtcp: Peer; tx: SrtpContext; rx: SrtpContext }

/** `a`: SRTP party with rtcp-mux (reports generated towards it); `b`: plain party, RTCP on port + 1. */
async function setup(t: import('node:test').TestContext, plane: MediaPlane): Promise<Setup> {
  const pa = await plane.openPair('127.0.0.1', 'g');
  const pb = await plane.openPair('127.0.0.1', 'g');
  const a = await udpPeer(t), b = await udpPeer(t), bRtcp = await udpPeer(t);
  const fromA = keys(), toA = keys();
  plane.install([
    { ...plan(pa.rtp, a, pb.rtp), rtcpMux: true, rtcpSink: pb.rtcp,
      crypto: { sdes: { rx: fromA, tx: toA }, dtls: null }, generateRtcp: true },
    plan(pb.rtp, b, pa.rtp),
    { ...plan(pb.rtcp, bRtcp, pa.rtp), kind: 'rtcp' },
  ]);
  return { pa, pb, a, b, bRtcp, tx: createSrtpContext(SUITE, fromA.k, fromA.s), rx: createSrtpContext(SUITE, toA.k, toA.s) };
}

/** Media both ways for a while; returns the decrypted RTCP the SRTP party got. */
async function talk(s: Setup, packets: number, plainRtcp: boolean, raw: Buffer[] = []): Promise<RtcpInfo[]> {
  const got: RtcpInfo[] = [];
  s.a.sock.on('message', (m) => {
    if (m[1]! < 192 || m[1]! > 223) return;
    const clear = s.rx.unprotectRtcp(m);
    assert.ok(clear, 'generated RTCP decrypts with the SRTP party\'s keys');
    raw.push(clear);
    const info = parseRtcp(clear);
    if (info) got.push(info);
  });
  for (let i = 1; i <= packets; i++) {
    // The SRTP party loses none; the plain party's seq 5 never arrives.
    await s.a.send(s.tx.protectRtp(rtp({ seq: 1000 + i, ts: 160 * i, ssrc: 0xa0a0 }))!, s.pa.port);
    if (i !== 5) await s.b.send(rtp({ seq: i, ts: 160 * i, ssrc: 0xb0b0 }), s.pb.port);
    if (plainRtcp && i % 10 === 0) await s.bRtcp.send(rtcpRR(0xb0b0), s.pb.port + 1);
    await new Promise((r) => setTimeout(r, 20));
  }
  return got;
}

async function checkGenerated(t: import('node:test').TestContext, plane: MediaPlane): Promise<void> {
  const s = await setup(t, plane);
  const got = await talk(s, 150, false); // 3 s: the first report is due within 1.5 s
  assert.ok(got.length >= 1, 'the SRTP party got at least one report');
  const r = got[got.length - 1]!;
  assert.equal(r.senders.length, 1);
  const sr = r.senders[0]!;
  assert.equal(sr.ssrc, 0xb0b0, 'SR about the plain party\'s stream');
  // The first report is due 0.5-1.5 s in (at 50 pps: 25-75 packets); a later one counts more.
  assert.ok(sr.packetCount >= 20 && sr.packetCount <= 149, `packet count ${sr.packetCount}`);
  assert.equal(sr.octetCount, sr.packetCount * 160);
  const block = r.reports.find((b) => b.ssrc === 0xa0a0);
  assert.ok(block, 'report block about the SRTP party\'s stream');
  assert.equal(block.reporterSsrc, 0xb0b0);
  assert.equal(block.cumulativeLost, 0);
  assert.ok(block.extendedHighestSeq > 1020 && block.extendedHighestSeq <= 1150, `highest seq ${block.extendedHighestSeq}`);
  // The plain party's loss is ours to see, not reported to the party it came from.
  assert.equal(r.reports.length, 1);
}

test('generate-RTCP: the SRTP party gets SRTCP SR/RR with plausible counts while the plain party sends none', async (t) => {
  const base = 56000 + 2 * Math.floor(Math.random() * 1000);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  await checkGenerated(t, plane);
});

test('generate-RTCP in a media worker', async (t) => {
  const { WorkerMediaPlane } = await import('../../media/worker-plane.js');
  const base = 58100 + 2 * Math.floor(Math.random() * 400);
  const plane = await WorkerMediaPlane.start({ min: base, max: base + 9 }, 1, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  await checkGenerated(t, plane);
});

test('generate-RTCP: when the plain party sends RTCP, that is forwarded and nothing is generated', async (t) => {
  const base = 59000 + 2 * Math.floor(Math.random() * 200);
  const plane = new LocalMediaPlane({ min: base, max: base + 9 }, { nowMs: Date.now() }, ['127.0.0.1']);
  t.after(() => plane.shutdown());
  const s = await setup(t, plane);
  // Its first RR goes out before any report could be due.
  await s.bRtcp.send(rtcpRR(0xb0b0), s.pb.port + 1);
  const raw: Buffer[] = [];
  const got = await talk(s, 120, true, raw);
  assert.ok(raw.length >= 10, `the plain party's RRs arrive (${raw.length})`);
  for (const m of raw) assert.deepEqual(m, rtcpRR(0xb0b0), 'only the plain party\'s own RRs');
  assert.equal(got.length, 0, 'no generated SR/RR');
});
